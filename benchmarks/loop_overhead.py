"""The orchestrator's own time per iteration (all but agent and training), against history size.

python benchmarks/loop_overhead.py [--history 10 100 1000] [--iterations 7] [--data-dir DIR]
                                   [--strategist]

For each history size H: a fresh workspace and run with H recorded iterations (realistic
explanations, train.py texts, prompts; recorded through Loop._record, so with git commits and
refs), then a few real iterations through Loop._experiment + Loop._record with an agent that
answers at once and a train.py that only saves constant predictions. Overhead is the wall time of
one iteration minus the agent's own time and train_seconds; the components are timed by wrapping
the functions the loop calls. exit-detect is how late the runner noticed train.py had exited
(counted in train_seconds, so not in the overhead; shown for information).

--strategist: a strategist (answering at once) is called before every timed iteration, the worst
case (the default schedule calls it every 5): its part of the overhead is `strategist` (the
prompt it reads, checking its reply, recording and committing the version); the sizes of its
prompt and of the research agent's prompt are printed in characters.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from autoresearch.agents.base import Answer, Proposal, Request
from autoresearch.core import config
from autoresearch.core.records import CRASH, DISCARD, INVALID, KEEP, Iteration, Usage
from autoresearch.loop import loop
from autoresearch.store import workspace
from autoresearch.store.gitrepo import ExperimentRepo
from autoresearch.store.layout import runs_dir
from autoresearch.store.store import Store, incumbent
from autoresearch.training import experiment, task

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
COMPONENTS = ["prompt", "copy", "fingerprint", "score", "git", "record", "results", "strategist"]


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
        self.seconds = 0.0

    def propose(self, request: Request) -> Proposal:
        started = time.perf_counter()
        text = f"# proposal {request.iteration}\n{FAST_TRAIN}"
        proposal = Proposal(
            train_py=text,
            explanation=explanation(random.Random(request.iteration), request.iteration),
            raw_output="I edited train.py.\n" * 50,
            usage=Usage(tokens_in=len(request.prompt) // 4, tokens_out=800, cost_usd=0.01),
        )
        self.seconds = time.perf_counter() - started
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


def fill(the_loop: loop.Loop, size: int) -> list[Iteration]:
    """The baseline (trained) and size-1 synthetic iterations recorded as the loop records them."""
    history: list[Iteration] = []
    the_loop._record(the_loop._baseline(), history)
    rng = random.Random(size)
    write_results, loop.write_results = loop.write_results, lambda *_: None  # once, at the end
    try:
        for n in range(1, size):
            parent = incumbent(history)
            status = rng.choices([KEEP, DISCARD, CRASH, INVALID], [1, 7, 1.5, 0.5])[0]
            train_py = variant(rng)
            it = Iteration(
                iteration=n,
                status=status,
                value=None if status in (CRASH, INVALID) else rng.uniform(0.8, 0.92),
                reason="timeout: killed at 300s budget + 30s grace" if status == CRASH else None,
                explanation=explanation(rng, n),
                train_py=train_py,
                parent=parent.iteration,
                diff=loop.unified_diff(parent.train_py, train_py),
                prompt="x" * 12_000,
                raw_output="I edited train.py.\n" * 50,
                usage=Usage(3000, 800, 2000, 0.01),
                agent_seconds=40.0,
                train_seconds=300.0,
                peak_memory_mb=900.0,
                started_at=time.time(),
            )
            the_loop._record(it, history)
    finally:
        loop.write_results = write_results
    write_results(the_loop.store.dir / "results.tsv", history, the_loop.cfg)
    return history


def measure(size: int, iterations: int, probe: Probe, strategist: bool) -> list[dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
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
        history = fill(the_loop, size)
        filled = time.perf_counter() - started
        print(f"history {size}: filled in {filled:.1f} s", flush=True)
        rows = []
        for _ in range(iterations):
            started = time.perf_counter()  # the strategist's call, its git commit included
            the_loop.fixed["program.md"] = the_loop.strategist.revise(history)
            thinking = time.perf_counter() - started
            probe.spent.clear()
            started = time.perf_counter()
            it = the_loop._experiment(len(history), history)
            the_loop._record(it, history)
            total = time.perf_counter() - started
            log = Path(it.log_path).read_text().split()
            start, end = float(log[log.index("START") + 1]), float(log[log.index("EXIT") + 1])
            row = {label: probe.spent[label] for label in COMPONENTS}
            row["strategist"] = thinking
            row["overhead"] = total + thinking - agent.seconds - it.train_seconds
            row["other"] = row["overhead"] - sum(row[label] for label in COMPONENTS)
            row["exit-detect"] = start + it.train_seconds - end
            row["prompt chars"] = len(it.prompt)
            row["strategist chars"] = thinker.prompt_chars if thinker else 0
            rows.append(row)
        store.close()
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--iterations", type=int, default=7, help="timed iterations per size")
    parser.add_argument("--data-dir", default=os.environ.get("AUTORESEARCH_DATA_DIR"))
    parser.add_argument("--strategist", action="store_true", help="a strategist call each time")
    args = parser.parse_args()
    data = args.data_dir or next((str(p) for p in DATA_CANDIDATES if p.is_dir()), None)
    if data:
        os.environ["AUTORESEARCH_DATA_DIR"] = data
    probe = Probe()
    for owner, attr, label in [
        (loop, "render_prompt", "prompt"),
        (loop, "copy_for_experiment", "copy"),
        (loop, "fingerprint", "fingerprint"),
        (task, "score", "score"),
        (experiment, "collect_predictions", "score"),
        (ExperimentRepo, "commit", "git"),
        (ExperimentRepo, "set_ref", "git"),
        (Store, "record", "record"),
        (loop, "write_results", "results"),
    ]:
        probe.wrap(owner, attr, label)
    columns = ["overhead", *COMPONENTS, "other", "exit-detect"]
    lines = [" ".join(f"{c:>11}" for c in ["history", *columns])]
    sizes: list[str] = []
    with tempfile.TemporaryDirectory() as cache:
        os.environ.setdefault("AUTORESEARCH_CACHE_DIR", cache)
        for size in args.history:
            rows = measure(size, args.iterations, probe, args.strategist)
            medians = [statistics.median(row[c] for row in rows) * 1000 for c in columns]
            lines.append(" ".join([f"{size:>11}", *(f"{m:>8.1f} ms" for m in medians)]))
            sizes.append(
                f"history {size}: research prompt {rows[-1]['prompt chars']:,} characters"
                + (
                    f", strategist prompt {rows[-1]['strategist chars']:,}"
                    if args.strategist
                    else ""
                )
            )
    print(f"median of {args.iterations} iterations; overhead = wall - agent - train_seconds")
    print("\n".join(lines))
    print("\n".join(sizes))


if __name__ == "__main__":
    main()
