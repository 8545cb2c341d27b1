"""The prompt: program.md, the incumbent train.py and the history, the seeds' key lever.

`full`: the last `recent_window` iterations with complete explanations, metric, status and crash
reason; every older one as one compact line; aggregate statistics over all of them.
`truncated`: the seeds' poor context (first 60 characters of the first line, last 10 only),
kept so users can compare the two.

The prompt starts with what stays the same between iterations (role, program.md, the incumbent
train.py: `render_stable`) and ends with what changes (the history), so that API agents can have
the start cached.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from string import Template

from autoresearch.noise import estimate
from autoresearch.records import BASELINE, CRASH, KEEP, STATUSES, Iteration

PROMPTS = Path(__file__).parent / "prompts"
TRUNCATED_CHARS, TRUNCATED_WINDOW = 60, 10
LOG_TAIL_LINES, LOG_LINE_CHARS, LOG_TAIL_BYTES = 30, 300, 64_000


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


def log_tail(path: str | None, count: int = LOG_TAIL_LINES) -> list[str]:
    """The last count non-empty lines of a training log (each cut to LOG_LINE_CHARS)."""
    if not path or not Path(path).is_file():
        return []
    with open(path, "rb") as log:
        log.seek(max(0, log.seek(0, 2) - LOG_TAIL_BYTES))
        text = log.read().decode(errors="replace")
    lines = [line.rstrip()[:LOG_LINE_CHARS] for line in text.splitlines() if line.strip()]
    return lines[-count:]


def full_entry(it: Iteration, metric: str) -> str:
    head = f"### Iteration {it.iteration}: {it.status}, {metric} {fmt(it.value)}"
    if len(it.runs) > 1:
        head += f" (mean of {len(it.runs)} runs: {', '.join(fmt(r.value) for r in it.runs)})"
    lines = [head]
    if it.reason:
        lines.append(f"Reason: {it.reason}")
    lines.append(it.explanation.strip() or "(no explanation)")
    tail = log_tail(it.log_path) if it.status == CRASH else []
    if tail:  # what broke, so that the next proposal can fix it
        lines += [f"The end of its training log (last {len(tail)} lines):", "```", *tail, "```"]
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


def render_stable(program: str, incumbent: Iteration, cfg) -> str:
    """The start of the prompt, the same from one iteration to the next until a keep."""
    return template("iteration.txt").substitute(
        program=program.strip(),
        budget=f"{cfg.budget_secs:g}",
        metric=cfg.metric,
        direction="higher is better" if cfg.direction == "maximize" else "lower is better",
        incumbent_iteration=incumbent.iteration,
        incumbent_value=fmt(incumbent.value),
        train_py=incumbent.train_py.rstrip(),
        confirmation=(
            template("confirmation.txt").substitute(confirm_runs=cfg.loop.confirm_runs)
            if cfg.loop.confirm_runs
            else ""
        ),
    )


def noise_text(history: list[Iteration], metric: str) -> str:
    """What difference is real, once the noise floor is measured ("" before)."""
    noise = estimate(history)
    if noise.sigma is None:
        return ""
    shown = template("noise.txt").substitute(sigma=fmt(noise.sigma), runs=noise.runs, metric=metric)
    return shown + "\n"


def render_prompt(
    program: str,
    incumbent: Iteration,
    history: list[Iteration],
    cfg,
) -> str:
    history_text = render_history(
        history, cfg.loop.context, cfg.loop.recent_window, cfg.better, cfg.metric
    )
    varying = template("iteration_history.txt").substitute(
        history=history_text, metric=cfg.metric, noise=noise_text(history, cfg.metric)
    )
    return f"{render_stable(program, incumbent, cfg)}\n{varying}"
