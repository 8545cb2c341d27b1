"""The terminal while `autoresearch run` works: a live panel on a terminal (the phase, a countdown
of the training budget, the end of train.log, the best so far and its trend, the count, the cost,
an ETA), plain progress lines elsewhere (CI, nohup, a pipe), so that a log stays readable."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from autoresearch.core.config import Config
from autoresearch.core.history import History
from autoresearch.core.logs import tail_lines
from autoresearch.core.records import CONFIRMING, PROPOSING, STRATEGIST, TRAINING, Iteration
from autoresearch.core.safe_text import one_line
from autoresearch.core.text import fmt, plural
from autoresearch.loop.runs import titled
from autoresearch.store.store import Store
from autoresearch.views.snapshot import eta_from, live_log, pace_of

LABELS = {
    PROPOSING: "agent thinking",
    TRAINING: "training",
    CONFIRMING: "confirming",
    STRATEGIST: "strategist thinking",
}
SPARKS = "▁▂▃▄▅▆▇█"
TREND_WINDOW = 5  # the trend: how much the best moved over the last this many iterations
SPARK_POINTS = 30  # the bests the sparkline draws (more than TREND_WINDOW)
LOG_LINES = 5
HEARTBEAT_SECS = 60.0  # plain mode: a line this often while a phase goes on
REFRESH_PER_SEC = 2


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def budget_text(live: dict, elapsed: float) -> str:
    """ "0:48 of the budget left", or past the budget "over budget: in grace 0:03 of 0:05" (the
    seconds before the experiment is killed); "" when the phase has no budget."""
    budget = live.get("budget_secs")
    if not budget:
        return ""
    if elapsed <= budget:
        return f"{clock(budget - elapsed)} of the budget left"
    grace = live.get("grace_secs") or 0.0
    return f"over budget: in grace {clock(min(elapsed - budget, grace))} of {clock(grace)}"


def phase_text(live: dict, elapsed: float) -> str:
    """ "iteration 3: training, 0:12 (0:48 of the budget left)" (as the dashboard says it too);
    a confirmation run says which of how many, and the first run's score."""
    label = LABELS.get(live["phase"], live["phase"])
    if live["phase"] == CONFIRMING and live.get("runs"):
        label += f" (run {live.get('run', 1)} of {live['runs']})"
    text = f"iteration {live['iteration']}: {label}, {clock(elapsed)}"
    if budget := budget_text(live, elapsed):
        text += f" ({budget})"
    if live.get("first") is not None:
        text += f"; first run {fmt(live['first'])}"
    if live.get("in_flight"):
        text += f"; training too: {plural(len(live['in_flight']), 'iteration')} "
        text += f"({', '.join(map(str, live['in_flight']))})"
    return text


def sparkline(values: list[float]) -> str:
    low, high = min(values), max(values)
    if high == low:
        return SPARKS[0] * len(values)
    return "".join(SPARKS[round((v - low) / (high - low) * (len(SPARKS) - 1))] for v in values)


def log_lines(path: Path, count: int = LOG_LINES) -> list[str]:
    """The last non-empty lines of a training log that is being written (read from its end)."""
    return [one_line(line) for line in tail_lines(path, count)]


class Display:
    """Told by the loop what it does (phase) and what it recorded; prints plain lines: one after
    each record (the best, the trend, the count, cost and ETA) and one a minute while a phase
    lasts. `LiveDisplay` draws the same on a terminal, refreshed in place."""

    def __init__(
        self,
        store: Store,  # for its paths only: the database is the loop's (its thread's)
        cfg: Config,
        history: list[Iteration],
        say: Callable[[str], None],
        heartbeat: float = HEARTBEAT_SECS,
    ):
        self.store, self.cfg, self.say, self.heartbeat = store, cfg, say, heartbeat
        self.name = titled(store.run_id, store.get("name"))  # read here, in the loop's thread
        self.live: dict | None = None
        self.summary = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._update(history)

    # --- what the loop calls ---
    def phase(self, live: dict) -> None:
        self.live = live

    def recorded(self, history: list[Iteration]) -> None:
        self.live = None  # until the next phase begins
        self._update(history)
        self.say(self.summary)

    # --- what is shown ---
    def _update(self, history: list[Iteration]) -> None:
        """Computed in the loop's thread: the drawing thread reads only finished values, and
        none of them is recomputed from the whole history."""
        facts = History.of(history, self.cfg.better)
        self.count = len(facts)
        self.bests = [b for b in facts.bests[-SPARK_POINTS:] if b is not None]
        self.best_at = None
        if self.bests:
            kept = (it for it in reversed(facts) if it.kept and it.value == self.bests[-1])
            self.best_at = next(kept).iteration
        self.cost = None if facts.unpriced else facts.cost_usd
        self.pace = pace_of(facts)
        self.recorded_at = time.time()
        self.summary = self.describe()

    def describe(self, since_record: float = 0.0) -> str:
        return "progress: " + ", ".join(p for p in self.facts(since_record) if p)

    def facts(self, since_record: float) -> tuple[str, str, str]:
        """Short texts: the best and its trend, the count, the cost and ETA."""
        planned, bests = self.cfg.loop.iterations, self.bests
        best = ""
        if bests:
            back = min(TREND_WINDOW, len(bests) - 1)
            trend = f", {bests[-1] - bests[-1 - back]:+.4f} over the last {back}" if back else ""
            best = f"best {one_line(self.cfg.metric)} {fmt(bests[-1])} (iteration {self.best_at}{trend})"
        count = f"{max(0, self.count - 1)} of {planned} iterations done"
        cost = "cost " + ("unknown" if self.cost is None else f"${self.cost:.2f}")
        live = self.live  # the phase in progress: a candidate being confirmed has runs to go
        now = self.recorded_at + since_record
        eta = eta_from(
            self.pace,
            planned,
            {**live, "elapsed_secs": now - live["started_at"]}
            if live
            else {"elapsed_secs": since_record},
        )
        return best, count, cost + (f", ETA {clock(eta)}" if eta else "")

    def phase_line(self, now: float) -> str:
        return "" if self.live is None else phase_text(self.live, now - self.live["started_at"])

    def log_path(self) -> Path | None:
        return live_log(self.store, self.live)

    # --- plain mode: a heartbeat while a phase goes on ---
    def __enter__(self) -> Display:
        self._thread = threading.Thread(target=self._work, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _work(self) -> None:
        while not self._stop.wait(self.heartbeat):
            line, log = self.phase_line(time.time()), self.log_path()
            if line:
                tail = log_lines(log, 1) if log else []
                self.say(line + (f"; train.log: {tail[0]}" if tail else ""))


class LiveDisplay(Display):
    """On a terminal: a panel redrawn in place under the lines the run prints."""

    def __init__(self, console: Console, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.console = console
        self.view = Live(console=console, auto_refresh=False, transient=True, redirect_stdout=False)

    def __enter__(self) -> LiveDisplay:
        self.view.start()
        return super().__enter__()

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        try:
            self.view.stop()
        except OSError:
            pass  # the terminal is gone (SIGHUP)

    def _work(self) -> None:
        while not self._stop.wait(1 / REFRESH_PER_SEC):
            try:
                self.view.update(self.render(time.time()), refresh=True)
            except OSError:
                return  # the terminal is gone: the plain lines still go to orchestrator.log

    def render(self, now: float) -> Panel:
        rows: list = []
        live = self.live
        if live is not None:
            head = Table.grid(padding=(0, 1), expand=True)
            head.add_column(no_wrap=True)
            head.add_column(ratio=1)
            head.add_column(no_wrap=True, justify="right")
            elapsed = now - live["started_at"]
            label = Text(LABELS.get(live["phase"], live["phase"]), style="bold cyan")
            budget = live.get("budget_secs")
            if live["phase"] == CONFIRMING and live.get("runs"):
                label.append(f" {live.get('run', 1)}/{live['runs']}")
            if budget:
                over = elapsed > budget
                bar = ProgressBar(
                    total=budget,
                    completed=min(budget, elapsed),
                    complete_style="red" if over else "bar.complete",
                )
                left = budget_text(live, elapsed) if over else f"{clock(budget - elapsed)} left"
                head.add_row(label, bar, Text(f"{left} of {clock(budget)}" if not over else left,
                                              style="red" if over else ""))  # fmt: skip
            else:
                head.add_row(label, Text(one_line(live.get("agent", ""))), clock(elapsed))
            rows.append(head)
            if live.get("first") is not None:
                rows.append(Text(f"first run: {one_line(self.cfg.metric)} {fmt(live['first'])}"))
            if live.get("description"):
                rows.append(Text(one_line(live["description"]), no_wrap=True, overflow="ellipsis"))
        best, count, cost = self.facts(now - self.recorded_at)
        bests = self.bests
        if best:
            spark = f" {sparkline(bests[-30:])}" if len(bests) > 1 else ""
            rows.append(Text.assemble((best, "green"), spark, no_wrap=True, overflow="ellipsis"))
        rows.append(Text(f"{count} · {cost}", no_wrap=True, overflow="ellipsis"))
        path = self.log_path()
        if path is not None:
            for line in log_lines(path):
                rows.append(Text(f"| {line}", style="dim", no_wrap=True, overflow="ellipsis"))
        n = live["iteration"] if live else max(0, self.count - 1)
        title = f"run {one_line(self.name)} · iteration {n} of {self.cfg.loop.iterations}"
        return Panel(Group(*rows), title=title, title_align="left")


def for_console(console: Console, *args, **kwargs) -> Display:
    """The live panel on a terminal, plain lines otherwise."""
    if console.is_terminal and not console.is_dumb_terminal:
        return LiveDisplay(console, *args, **kwargs)
    return Display(*args, **kwargs)
