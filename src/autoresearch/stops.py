"""Early stops that save the night: a baseline that fails, the same failure again and again; and
the stops a night is planned around: a target reached, a time of day."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from pathlib import Path

from autoresearch.records import BASELINE, CRASH, INVALID, KEEP, TIMEOUT, Iteration

TAIL_LINES = 15
TAIL_BYTES = 16_384
# What the template's train.py logs: as training starts, and as each epoch ends ("epoch 3 loss
# 0.4121 (12.3s)"); a timeout after either is the budget's fault, not train.py's.
_TRAINING = re.compile(r"^training: \d+ images an epoch\b")
_EPOCH = re.compile(r"^epoch \d+\b.*\((\d+(?:\.\d+)?) ?s\)$")
_EXCEPTION = re.compile(r"\b([A-Z]\w*(?:Error|Exception|Exit|Interrupt|Warning))\b")


def failure_kind(it: Iteration) -> str | None:
    """What a failed iteration has in common with others failing the same way (the same
    exception, the same API error, the same timeout); None for an iteration that did not fail."""
    if it.status not in (CRASH, INVALID):
        return None
    reason = (it.reason or "").split("; reverted the agent's changes")[0]
    exception = _EXCEPTION.findall(reason)
    if exception:
        return f"{it.status}: {exception[-1]}"
    # Numbers, quoted text and paths vary between attempts that fail the same way.
    reason = re.sub(r"'[^']*'|\"[^\"]*\"|`[^`]*`", "'…'", reason)
    reason = re.sub(r"\S*/\S*", "…", reason)
    reason = re.sub(r"\d+(\.\d+)?", "N", reason)
    return f"{it.status}: {reason[:80]}"


def failure_streak(history: list[Iteration]) -> int:
    """How many of the last iterations failed the same way as the last one."""
    kinds = [failure_kind(it) for it in history if it.iteration > 0]
    if not kinds or kinds[-1] is None:
        return 0
    streak = 0
    for kind in reversed(kinds):
        if kind != kinds[-1]:
            break
        streak += 1
    return streak


def plateau_stop(history: list[Iteration], changed_after: int, limit: int) -> str | None:
    """Why the run ends on a plateau: `limit` iterations without a keep since the last keep and
    the last strategy change (after iteration changed_after); None while it has not (or 0)."""
    last = history[-1].iteration if history else 0
    keep = next((it.iteration for it in reversed(history) if it.status in (KEEP, BASELINE)), 0)
    since = max(keep, changed_after)
    if not limit or last - since < limit:
        return None
    change = f"the strategy changed after iteration {changed_after}" if changed_after > keep else (
        "the last keep" if keep else "the baseline"
    )  # fmt: skip
    return f"plateau: {last - since} iterations without a keep since {change} ([loop] stop_after)"


def baseline_failed(it: Iteration) -> bool:
    return it.status == CRASH or it.value is None


def out_of_time(it: Iteration, scored: str | None) -> str | None:
    """Why a baseline that timed out shows the budget too short for this machine (or the machine
    too busy) rather than train.py broken: the epoch times in its log, its first epoch still
    going, or scored (where the same train.py scored before); None when nothing shows it."""
    run = next((r for r in it.runs if r.status == TIMEOUT), None)
    if run is None:
        return None
    lines = log_tail(str(run.log_path) if run.log_path else None, lines=TAIL_BYTES)  # all
    epochs = [float(m.group(1)) for line in lines if (m := _EPOCH.match(line))]
    seen = []
    if epochs:
        seen.append(f"an epoch took up to {max(epochs):.1f} s here")
    elif any(_TRAINING.match(line) for line in lines):
        seen.append(f"its first epoch had not ended after {run.train_seconds:.1f} s")
    if scored:
        seen.append(f"the same train.py scored {scored}")
    return "; ".join(seen) or None


def log_tail(path: str | None, lines: int = TAIL_LINES) -> list[str]:
    """The last lines of a training log (not the whole log: it can be large)."""
    if not path:
        return []
    try:
        with open(Path(path), "rb") as f:
            size = f.seek(0, 2)
            f.seek(max(0, size - TAIL_BYTES))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line.rstrip() for line in text.splitlines() if line.strip()][-lines:]


def deadline(until: str | None, now: float) -> float | None:
    """The time (epoch seconds) of the next HH:MM after now, local time; None without one."""
    if until is None:
        return None
    hours, minutes = map(int, until.split(":"))
    start = datetime.fromtimestamp(now)
    at = start.replace(hour=hours, minute=minutes, second=0, microsecond=0)
    return (at if at > start else at + timedelta(days=1)).timestamp()


def goal_stop(cfg, history: list[Iteration], until_at: float | None) -> str | None:
    """Why no new proposal may be asked for: the confirmed best reached [loop] target, or the
    --until time has come; None to go on."""
    from autoresearch.condense import fmt
    from autoresearch.store import incumbent

    target = cfg.loop.target
    best = incumbent(history, cfg.better) if history else None
    if target is not None and best is not None and best.value is not None:
        if best.value == target or cfg.better(best.value, target):
            return (
                f"target reached: {cfg.metric} {fmt(best.value)} at iteration {best.iteration} "
                f"(target {target:g}, [loop] target)"
            )
    if until_at is not None and time.time() >= until_at:
        return f"time is up: no new proposal after {cfg.loop.until} (--until)"
    return None
