"""The orchestrator's own time per iteration (all but agent and training), against history size.

python benchmarks/loop_overhead.py [--history 10 100 1000 10000] [--iterations 7] [--data-dir DIR]
                                   [--strategist]

For each history size H: a fresh workspace and run with H recorded iterations (realistic
explanations, train.py texts, prompts), recorded through the real Recorder (git commits and refs,
the store's rows and files, results.tsv); then a few real iterations through the one driver
(scheduler.py, over the local engine, sequential) with an agent that answers at once and a
train.py that only saves constant predictions. The overhead of an iteration is the wall time
between two records minus the agent's own time and train_seconds (the first iteration, which also
reads the history from the store, is not counted); the components are timed by wrapping what the
driver calls (nested: `copy` is inside `ask` and `accept`; `git`, `store` and `results` inside
`record`); `other` is the rest, mostly scoring the predictions (in the training's thread, after
train_seconds) and starting the training. Figures: docs/benchmarks.md.

Everything is written under the temporary folder (TMPDIR picks another): the run, its store and
its git repository, the experiments' copies; nothing is deleted before every size is measured.
The time to create a file there is printed for each size, measured just before it: an
iteration creates about 30 files, and where creating one takes a millisecond (this project's
ext4 VMs, mounted with discard, for a while after many deletions) that alone adds 10-25 ms.

--strategist: a strategist (answering at once) is called before every timed iteration, the worst
case (the default schedule calls it every 5): its part of the overhead is `strategist`; the sizes
of its prompt and of the research agent's prompt are printed in characters.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from autoresearch.agents.base import Answer, Proposal, Request
from autoresearch.core import config
from autoresearch.core.history import History
from autoresearch.core.records import (
    BASELINE,
    CRASH,
    DISCARD,
    INVALID,
    KEEP,
    OK,
    Iteration,
    TrainingRun,
    Usage,
)
from autoresearch.loop import loop, scheduler
from autoresearch.loop.proposing import Proposer
from autoresearch.loop.recorder import Recorder
from autoresearch.loop.stop_rules import StopRules
from autoresearch.loop.strategist import Strategist
from autoresearch.prompt.runfacts import unified_diff
from autoresearch.store import workspace
from autoresearch.store.gitrepo import ExperimentRepo
from autoresearch.store.layout import runs_dir
from autoresearch.store.results import ResultsFile
from autoresearch.store.store import Store
from autoresearch.store.workdirs import Workdirs
from autoresearch.training import task

DATA_CANDIDATES = [
    Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion-mnist",
    Path("/usr/share/datasets/fashion-mnist"),
]
TEMPLATE = (workspace.TASKS["fashion-mnist"] / "train.py").read_text()
# Saves constant predictions and says when it started and ended; the template's text rides
# along as comments so the file has a realistic size.
FAST_TRAIN = (
    "import os, time\nimport numpy as np\nimport prepare\n\n"
    "print('START', os.environ['AUTORESEARCH_START_TIME'])\n"
    "prepare.save_predictions(np.zeros(10000, dtype=np.int64))\n"
    "print('EXIT', repr(time.time()))\nos._exit(0)  # no interpreter teardown: EXIT is when it ends\n\n"
    + "".join(f"# {line}\n" for line in TEMPLATE.splitlines())
)
IDEAS = [
    "Switch the optimizer to AdamW with a cosine learning-rate schedule",
    "Add a hidden layer of 256 ReLU units",
    "Normalize the pixels with the training set's mean and standard deviation",
    "Raise the batch size to 256 and scale the learning rate with it",
    "Add label smoothing of 0.1 to the cross-entropy loss",
    "Replace the linear model with a small two-layer convolutional network",
]
COMPONENTS = [
    "ask", "accept", "copy", "record", "git", "store", "results", "stops", "search",
    "strategist",
]  # fmt: skip


OUTER = ["ask", "accept", "record", "stops", "search", "strategist"]  # not nested


def explanation(rng: random.Random, i: int) -> str:
    idea = rng.choice(IDEAS)
    return (
        f"{idea} (variant {i}).\n\n"
        "The incumbent underfits: its training loss is still falling when the budget ends, and "
        "validation accuracy tracks training accuracy closely, so there is room for capacity and "
        "for a faster optimizer. This change keeps the epoch-boundary stopping rule and the data "
        "pipeline as they are, so any difference comes from the change itself.\n\n"
        f"I expect {rng.uniform(0.2, 1.5):.1f} points of validation accuracy; if it does not help, "
        "the next step is to tune the learning rate around the new setting rather than to revert."
    )


def variant(rng: random.Random) -> str:
    lr = f"LEARNING_RATE = {10 ** rng.uniform(-4, 0):.5f}"
    return TEMPLATE.replace("LEARNING_RATE = 0.1", lr).replace(
        "BATCH_SIZE = 32", f"BATCH_SIZE = {rng.choice([32, 64, 128, 256, 512])}"
    )


class InstantAgent:
    name = "instant"

    def __init__(self) -> None:
        self.seconds: dict[int, float] = {}  # by iteration: the agent's own time

    def propose(self, request: Request) -> Proposal:
        started = time.perf_counter()
        text = f"PROPOSAL = {request.iteration}  # a new experiment each time\n{FAST_TRAIN}"
        proposal = Proposal(
            train_py=text,
            explanation=explanation(random.Random(request.iteration), request.iteration),
            raw_output="I edited train.py.\n" * 50,
            usage=Usage(tokens_in=len(request.prompt) // 4, tokens_out=800, cost_usd=0.01),
        )
        self.seconds[request.iteration] = time.perf_counter() - started
        return proposal

    def check(self) -> str:
        return "instant"


class InstantStrategist:
    """Answers at once with a new strategy each time (so every call makes a version)."""

    name = "instant"
    model = "instant"

    def __init__(self) -> None:
        self.calls, self.prompt_chars = 0, 0

    def complete(self, prompt: str) -> Answer:
        self.calls += 1
        self.prompt_chars = len(prompt)
        text = (
            f"Reasoning {self.calls}.\n\n## Strategy\n" + " ".join(IDEAS) + f" (call {self.calls})"
        )
        return Answer(text, Usage(tokens_in=len(prompt) // 4, tokens_out=300, cost_usd=0.01))


class Probe:
    """Adds the time spent in wrapped callables to per-label totals."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = defaultdict(float)

    def wrap(self, owner, attr: str, label: str) -> None:
        original = getattr(owner, attr)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.spent[label] += time.perf_counter() - started

        setattr(owner, attr, timed)


def run_of(value: float | None, rng: random.Random) -> TrainingRun:
    status = OK if value is not None else CRASH
    return TrainingRun(status, value, None, 300.0, 310.0, 900.0, None, rng.randrange(10**6))


def fill(the_loop: loop.Loop, size: int) -> History:
    """The baseline (two runs: a noise floor) and size-1 synthetic iterations, recorded through
    the real Recorder (git, the store's rows and files, results.tsv)."""
    cfg, store = the_loop.cfg, the_loop.store
    recorder = Recorder(
        cfg, store, the_loop.repo, the_loop.fixed, the_loop.workdirs, the_loop.live, lambda _: None
    )
    history = History([], cfg.better)
    rng = random.Random(size)
    for n in range(size):
        parent = history.incumbent
        keep = min(1.0, 100 / max(n, 1))  # keeps get rarer as a run goes on (10% at first)
        weights = [keep, 9 - keep, 1.5, 0.5]
        status = BASELINE if n == 0 else rng.choices([KEEP, DISCARD, CRASH, INVALID], weights)[0]
        value = None if status in (CRASH, INVALID) else rng.uniform(0.8, 0.92)
        runs = [] if status == INVALID else [run_of(value, rng) for _ in range(2 if n == 0 else 1)]
        train_py = FAST_TRAIN if n == 0 else variant(rng)
        it = Iteration(
            iteration=n,
            status=status,
            value=value,
            reason="timeout: killed at 300s budget + 30s grace" if status == CRASH else None,
            explanation=explanation(rng, n) if n else "Baseline: train.py as given, unchanged.",
            train_py=train_py,
            parent=parent.iteration if parent else None,
            diff=unified_diff(parent.train_py, train_py) if parent else "",
            prompt="x" * 12_000 if n else "",
            raw_output="I edited train.py.\n" * 50 if n else "",
            usage=Usage(3000, 800, 2000, 0.01) if n else Usage(),
            agent_seconds=40.0,
            train_seconds=300.0 * len(runs),
            peak_memory_mb=900.0,
            started_at=time.time(),
            runs=runs,
        )
        for k, run in enumerate(runs):
            store.record_run(n, k, run)
        recorder.record(it, history)
    return history


def measure(
    size: int, iterations: int, probe: Probe, strategist: bool, folder: Path, left: list[Path]
) -> list[dict[str, float]]:
    """The rows of size's timed iterations; its workspace goes in folder, and its experiments'
    folder is added to left (removed after every size: see main)."""
    ws = folder / f"ws-{size}"
    workspace.init(ws, "fashion-mnist", sys.executable)
    (ws / "train.py").write_text(FAST_TRAIN)
    every = {"strategist.every": 1, "strategist.plateau": 0} if strategist else {}
    cfg = config.load(ws, {"budget_secs": 300, "grace_secs": 30, **every})
    task.ensure_data(ws, cfg)
    store = Store.create(runs_dir(ws) / "bench", cfg.model_dump())
    agent = InstantAgent()
    thinker = InstantStrategist() if strategist else None
    the_loop = loop.Loop(ws, cfg, store, agent, say=lambda _: None, strategist=thinker)
    the_loop.start()
    started = time.perf_counter()
    fill(the_loop, size)
    os.sync()  # the fill's burst of files on the disk before the timing, not during it
    print(f"history {size}: filled in {time.perf_counter() - started:.1f} s", flush=True)
    # one more than timed: the first also reads the history from the store
    cfg.loop.iterations = size - 1 + iterations + 1
    marks: list[tuple[float, Iteration, dict[str, float]]] = []
    record = Recorder.record

    def marked(self, it, history):
        record(self, it, history)
        marks.append((time.perf_counter(), it, dict(probe.spent)))

    Recorder.record = marked
    probe.spent.clear()
    try:
        started = time.perf_counter()
        result = the_loop._iterate_until_done()
    finally:
        Recorder.record = record
        the_loop.engine.close()
        left.append(the_loop.root)  # Loop.run removes it at its end
    if len(marks) < 2:
        raise SystemExit(f"history {size}: the run ended early: {result.message}")
    rows = []
    for (before, _, spent_before), (end, it, spent) in zip(marks, marks[1:], strict=False):
        row = {label: spent.get(label, 0.0) - spent_before.get(label, 0.0) for label in COMPONENTS}
        row["overhead"] = end - before - agent.seconds.get(it.iteration, 0.0) - it.train_seconds
        row["other"] = row["overhead"] - sum(row[c] for c in OUTER)
        log = Path(it.log_path).read_text().split()
        start, exit_ = float(log[log.index("START") + 1]), float(log[log.index("EXIT") + 1])
        row["exit-detect"] = start + it.train_seconds - exit_
        row["prompt chars"] = len(store.iteration(it.iteration).prompt or "")
        row["strategist chars"] = thinker.prompt_chars if thinker else 0
        rows.append(row)
    store.close()
    return rows


def creation_us(folder: str, files: int = 50) -> float:
    """The median time to create an empty file in a new folder under folder, in microseconds
    (the files are left, to be removed with folder): the store, git and the copies create a
    few dozen files an iteration, and on some disks this alone moves the overhead by 10 ms."""
    tmp = tempfile.mkdtemp(dir=folder)
    times = []
    for i in range(files):
        started = time.perf_counter()
        os.close(os.open(Path(tmp) / str(i), os.O_CREAT | os.O_WRONLY))
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, nargs="+", default=[10, 100, 1000, 10000])
    parser.add_argument("--iterations", type=int, default=7, help="timed iterations per size")
    parser.add_argument("--data-dir", default=os.environ.get("AUTORESEARCH_DATA_DIR"))
    parser.add_argument("--strategist", action="store_true", help="a strategist call each time")
    args = parser.parse_args()
    data = args.data_dir or next((str(p) for p in DATA_CANDIDATES if p.is_dir()), None)
    if data:
        os.environ["AUTORESEARCH_DATA_DIR"] = data
    probe = Probe()
    for owner, attr, label in [
        (Proposer, "ask", "ask"),
        (Proposer, "accept", "accept"),
        (Workdirs, "copy", "copy"),
        (Recorder, "record", "record"),
        (ExperimentRepo, "commit", "git"),
        (ExperimentRepo, "set_refs", "git"),
        (Store, "record", "store"),
        (ResultsFile, "append", "results"),
        (StopRules, "cost", "stops"),
        (StopRules, "goal", "stops"),
        (StopRules, "plateau", "stops"),
        (StopRules, "streak", "stops"),
        (scheduler, "choose", "search"),
        (Strategist, "revise", "strategist"),
    ]:
        probe.wrap(owner, attr, label)
    columns = ["overhead", *COMPONENTS, "other", "exit-detect"]
    lines = [" ".join(f"{c:>10}" for c in ["history", *columns])]
    sizes: list[str] = []
    # Nothing is deleted until every size is measured: on a disk mounted with discard, files
    # created just after many deletions can take a millisecond each.
    left: list[Path] = []
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as folder:
        os.environ.setdefault("AUTORESEARCH_CACHE_DIR", cache)
        for size in args.history:
            created = creation_us(folder)
            rows = measure(size, args.iterations, probe, args.strategist, Path(folder), left)
            medians = [statistics.median(row[c] for row in rows) * 1000 for c in columns]
            lines.append(" ".join([f"{size:>10}", *(f"{m:>7.1f} ms" for m in medians)]))
            sizes.append(
                f"history {size}: research prompt {rows[-1]['prompt chars']:,} characters; "
                f"creating a file took {created:.0f} us before"
                + (
                    f", strategist prompt {rows[-1]['strategist chars']:,}"
                    if args.strategist
                    else ""
                )
            )
        for root in left:
            shutil.rmtree(root, ignore_errors=True)
    print(f"median of {args.iterations} iterations; overhead = wall - agent - train_seconds")
    print("\n".join(lines))
    print("\n".join(sizes))


if __name__ == "__main__":
    main()
