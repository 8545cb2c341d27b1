"""The stops a run is planned around and the ones that save the night, as rules the driver asks:
the cost, a target reached, a time of day (--until), a plateau, the same failure again and again,
a baseline that fails."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from autoresearch.core.history import History
from autoresearch.core.logs import tail_lines
from autoresearch.core.records import Iteration
from autoresearch.core.stops import TAIL_LINES, out_of_time
from autoresearch.core.text import plural
from autoresearch.loop.estimate import machine_cost
from autoresearch.loop.runs import TOO_SHORT, scored_before


class StopRules:
    """Why a run must stop: its cost, a plateau (checked before a proposal is asked for: both
    would spend more), the same failure again and again (after a record), a failed baseline."""

    def __init__(
        self, cfg, store, strategist, say: Callable[[str], None], until_at=None, workspace=None
    ):
        """until_at: when no more proposals may be asked for (deadline() of [loop] until, taken
        when the run starts); workspace: where the same train.py may have scored before."""
        self.cfg, self.store, self.strategist, self.say = cfg, store, strategist, say
        self.deadline, self.workspace = until_at, workspace

    def cost(self, history: History) -> str | None:
        """Why no more may be spent (the agent's, the strategist's, the machine's), or None."""
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
        tail = tail_lines(it.log_path, TAIL_LINES)
        if tail:
            self.say(f"the end of the baseline's log ({it.log_path}):")
            for line in tail:
                self.say(f"  | {line}")
        scored = self.workspace and scored_before(self.workspace, it.train_py, self.store.run_id)
        why = out_of_time(it, scored or None)
        fix = f"{TOO_SHORT} ({why}): give it a longer --budget" if why else "fix train.py"
        return (
            f"the baseline failed ({it.reason or 'no score'}); {fix} "
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
    from autoresearch.core.text import fmt

    target = cfg.loop.target
    best = History.of(history, cfg.better).incumbent
    if target is not None and best is not None and best.value is not None:
        if best.value == target or cfg.better(best.value, target):
            return (
                f"target reached: {cfg.metric} {fmt(best.value)} at iteration {best.iteration} "
                f"(target {target:g}, [loop] target)"
            )
    if until_at is not None and time.time() >= until_at:
        return f"time is up: no new proposal after {cfg.loop.until} (--until)"
    return None
