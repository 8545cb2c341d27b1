"""The prompt: program.md, the incumbent train.py and the history, the seeds' key lever.

`full`: the last `recent_window` iterations with complete explanations, metric, status and crash
reason; every older one as one compact line; aggregate statistics over all of them.
`truncated`: the seeds' poor context (first 60 characters of the first line, last 10 only),
kept so users can compare the two.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from string import Template

from autoresearch.records import BASELINE, KEEP, STATUSES, Iteration

PROMPTS = Path(__file__).parent / "prompts"
TRUNCATED_CHARS, TRUNCATED_WINDOW = 60, 10


def template(name: str) -> Template:
    return Template((PROMPTS / name).read_text())


def fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.4f}"


def best_so_far(history: list[Iteration], better) -> list[float | None]:
    """The incumbent's value after each iteration."""
    best, out = None, []
    for it in history:
        if it.status in (BASELINE, KEEP) and it.value is not None and better(it.value, best):
            best = it.value
        out.append(best)
    return out


def summary(history: list[Iteration], better, metric: str) -> str:
    counts = Counter(it.status for it in history)
    per_status = ", ".join(f"{s} {counts[s]}" for s in STATUSES if counts[s])
    bests = best_so_far(history, better)
    best = bests[-1] if bests else None
    if best is None:
        return f"## Statistics\n{len(history)} experiments ({per_status}); no successful run yet."
    first = next(it.iteration for it, b in zip(history, bests, strict=True) if b == best)
    streak = len(bests) - 1 - bests.index(best)
    return (
        f"## Statistics\n{len(history)} experiments ({per_status}). Best {metric} {fmt(best)} at "
        f"iteration {first}; {streak} experiments since then without improvement."
    )


def compact_line(it: Iteration) -> str:
    reason = f" ({it.reason})" if it.reason and it.status not in (KEEP, BASELINE) else ""
    return f"- {it.iteration}: {it.status} {fmt(it.value)} {it.description}{reason}"[:300]


def full_entry(it: Iteration, metric: str) -> str:
    head = f"### Iteration {it.iteration}: {it.status}, {metric} {fmt(it.value)}"
    lines = [head]
    if it.reason:
        lines.append(f"Reason: {it.reason}")
    lines.append(it.explanation.strip() or "(no explanation)")
    return "\n".join(lines)


def truncated_entry(it: Iteration) -> str:
    first = (it.explanation.strip().splitlines() or [""])[0][:TRUNCATED_CHARS]
    return f"- {it.iteration}: {it.status} {fmt(it.value)} {first}"


def render_history(history: list[Iteration], policy: str, window: int, better, metric: str) -> str:
    if not history:
        return "No experiments yet."
    if policy == "truncated":
        recent = history[-TRUNCATED_WINDOW:]
        return template("history_truncated.txt").substitute(
            recent_count=len(recent), recent="\n".join(truncated_entry(it) for it in recent)
        )
    recent = history[-window:] if window else []
    older = history[: len(history) - len(recent)]
    older_text = (
        "## Earlier experiments, one line each\n" + "\n".join(compact_line(it) for it in older)
        if older
        else ""
    )
    return template("history_full.txt").substitute(
        summary=summary(history, better, metric),
        older=older_text,
        recent_count=len(recent),
        recent="\n\n".join(full_entry(it, metric) for it in recent),
    )


def render_prompt(
    program: str,
    incumbent: Iteration,
    history: list[Iteration],
    cfg,
) -> str:
    history_text = render_history(
        history, cfg.loop.context, cfg.loop.recent_window, cfg.better, cfg.metric
    )
    return template("iteration.txt").substitute(
        program=program.strip(),
        budget=f"{cfg.budget_secs:g}",
        metric=cfg.metric,
        direction="higher is better" if cfg.direction == "maximize" else "lower is better",
        incumbent_iteration=incumbent.iteration,
        incumbent_value=fmt(incumbent.value),
        train_py=incumbent.train_py.rstrip(),
        history=history_text,
    )
