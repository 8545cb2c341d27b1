"""Early stops that save the night: a baseline that fails, the same failure again and again; and
the stops a night is planned around: a target reached, a time of day."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from autoresearch.core.records import CRASH, INVALID, TIMEOUT, Iteration
from autoresearch.core.text import plural

if TYPE_CHECKING:
    from autoresearch.core.history import History

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


class StopRules:
    """Why a run must stop: its cost, a plateau (checked before a proposal is asked for: both
    would spend more), the same failure again and again (after a record), a failed baseline."""

    def __init__(self, cfg, store, strategist, say: Callable[[str], None]):
        self.cfg, self.store, self.strategist, self.say = cfg, store, strategist, say
        self.deadline = deadline(cfg.loop.until, time.time())  # no proposal after it (--until)

    def cost(self, history: History) -> str | None:
        """Why no more may be spent (the agent's, the strategist's, the machine's), or None."""
        from autoresearch.loop.estimate import machine_cost

        spent = history.cost_usd + self.strategist.spent()
        spent += machine_cost(self.cfg, history, self.store)
        limit = self.cfg.loop.max_cost_usd
        if limit is not None and spent >= limit:
            return f"cost limit reached: ${spent:.2f} of ${limit:.2f}"
        return None

    def goal(self, history: History) -> str | None:
        """The confirmed best reached [loop] target, or the --until time has come."""
        return goal_stop(self.cfg, history, self.deadline)

    def plateau(self, history: History) -> str | None:
        since, limit = self.strategist.changed_after(), self.cfg.loop.stop_after
        return plateau_stop(history, since, limit)

    def streak(self, history: History) -> str | None:
        """Why the run must stop after its last record: failures in a row, the same way."""
        streak, limit, last = history.streak, self.cfg.loop.max_consecutive_failures, history[-1]
        if limit and streak >= limit:
            return (
                f"{plural(streak, 'iteration')} in a row failed the same way ({last.status}: "
                f"{last.reason}); fix the cause, then run again to resume"
            )
        return None

    def baseline(self, it: Iteration) -> str:
        """A baseline that crashes or scores nothing: every experiment would start from it."""
        tail = log_tail(it.log_path)
        if tail:
            self.say(f"the end of the baseline's log ({it.log_path}):")
            for line in tail:
                self.say(f"  | {line}")
        return (
            f"the baseline failed ({it.reason or 'no score'}); fix train.py "
            "(`autoresearch baseline` tries it), then start a new run with --new"
        )


def plateau_stop(history: History, changed_after: int, limit: int) -> str | None:
    """Why the run ends on a plateau: `limit` iterations without a keep since the last keep and
    the last strategy change (after iteration changed_after); None while it has not (or 0)."""
    last = history[-1].iteration if history else 0
    keep = history.last_keep
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
    from autoresearch.core.history import History
    from autoresearch.prompt.condense import fmt

    target = cfg.loop.target
    best = History(history, cfg.better).incumbent
    if target is not None and best is not None and best.value is not None:
        if best.value == target or cfg.better(best.value, target):
            return (
                f"target reached: {cfg.metric} {fmt(best.value)} at iteration {best.iteration} "
                f"(target {target:g}, [loop] target)"
            )
    if until_at is not None and time.time() >= until_at:
        return f"time is up: no new proposal after {cfg.loop.until} (--until)"
    return None
