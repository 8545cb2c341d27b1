"""The research loop: propose, check, train, score, decide, record; resumable at any point."""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import decode_source
from pathlib import Path

from autoresearch import task
from autoresearch.agent_sandbox import unsandboxed_warning
from autoresearch.agents.base import Agent, AgentError, AgentExhausted
from autoresearch.agents.command import CommandAgent
from autoresearch.condense import fmt
from autoresearch.config import Config
from autoresearch.context import ContextTooSmall
from autoresearch.experiment import FIXED_FILES, Trainer, experiments_root, read_plain
from autoresearch.gitrepo import ExperimentRepo
from autoresearch.noise import estimate
from autoresearch.proposing import Proposing
from autoresearch.records import (
    BASELINE,
    CRASH,
    FINISHED,
    INTERRUPTED,
    KEEP,
    RUNNING,
    STOPPED,
    Iteration,
)
from autoresearch.results import write_results
from autoresearch.runner.cluster import ClusterError
from autoresearch.runner.engines import engine_for
from autoresearch.runs import RunRefused, plural
from autoresearch.runstate import (
    RunLock,
    describe,
    kill_leftover,
    mark_inflight,
    run_tag,
    signal_of,
    tag_processes,
)
from autoresearch.safe_text import DESCRIPTION_CHARS, one_line, shorten
from autoresearch.scheduler import Scheduler
from autoresearch.stops import baseline_failed, failure_streak, log_tail, plateau_stop
from autoresearch.store import Store, incumbent
from autoresearch.strategist import Strategist, TextAgent
from autoresearch.trials import Trials
from autoresearch.workspace import copy_for_experiment, snapshot

SNAPSHOT = "workspace"  # the run's own copy of the workspace, taken when it starts


@dataclass
class LoopResult:
    state: str  # finished | interrupted | stopped
    message: str
    signum: int | None = None  # the signal that interrupted it


class Loop(Proposing):
    def __init__(
        self,
        workspace: Path,
        cfg: Config,
        store: Store,
        agent: Agent,
        say: Callable[[str], None],
        display=None,  # the terminal's view of the run (display.py), told each phase and record
        strategist: TextAgent | None = None,
    ):
        self.workspace, self.cfg, self.store, self.agent, self.say = (
            workspace, cfg, store, agent, say,
        )  # fmt: skip
        self.display = display
        self.repo = ExperimentRepo(store.dir / "repo", create=store.recorded() == 0)
        # off without an agent of its own
        self.strategist = Strategist(cfg, store, self.repo, strategist, say, self.phase)
        self.source = store.dir / SNAPSHOT
        self.root = experiments_root(store.dir)
        self.trainer: Trainer | None = None
        self.trials: Trials | None = None
        self.engine = None  # runner/engines.py: where runs train while the agent proposes
        self.in_flight: Callable[[], list[int]] = list  # the scheduler's: iterations training
        self.fixed: dict[str, bytes | None] = {}  # the run's prepare.py and program.md (start())
        self.seen_workspace: dict[str, str] | None = None

    # --- the run ---
    def run(self) -> LoopResult:
        with RunLock(self.store), tag_processes(self.store.dir):
            kill_leftover(self.store)
            self.start()
            # the iterations this session goes to (a resume may raise them), for status and serve
            self.store.set(state=RUNNING, stop_reason=None)
            try:
                result = self._iterate_until_done()
            except KeyboardInterrupt as interrupt:  # Ctrl-C, SIGTERM, SIGHUP
                signum = signal_of(interrupt)
                result = LoopResult(INTERRUPTED, f"interrupted by {describe(signum)}", signum)
            except AgentError as err:
                result = LoopResult(STOPPED, f"agent {self.agent.name}: {err}")
            except ContextTooSmall as err:
                result = LoopResult(STOPPED, str(err))
            self.store.set(state=result.state, stop_reason=result.message, live=None)
            if self.engine is not None:
                self.engine.close()
            kill_leftover(self.store)  # an agent or training a signal left behind
            shutil.rmtree(self.root, ignore_errors=True)  # the data view; made again on resume
            return result

    def start(self) -> None:
        """Before the first iteration: the run's copy of the workspace, the data, the trainer."""
        # Scores come from the workspace's prepare.py, imported once: it must be the run's.
        self._check_prepare_unchanged(self.workspace / "prepare.py")
        if not self.source.is_dir():  # a new run, or one from a release without snapshots
            snapshot(self.workspace, self.source)
        self.fixed = {name: read_plain(self.source / name) for name in FIXED_FILES}  # None: absent
        self.fixed["program.md"] = self.strategist.start(self.fixed["program.md"])
        task.ensure_data(self.workspace, self.cfg)
        self.trainer = Trainer.prepare(self.workspace, self.cfg, self.root)
        if self.trainer.warning:
            self.say(f"warning: {self.trainer.warning}")
        if not self.trainer.sandboxed and isinstance(self.agent, CommandAgent):
            self.say(f"warning: {unsandboxed_warning(self.agent.name)}")
        self.trials = Trials(
            self.trainer, self.store, self.fixed, self.copy_workspace, self.say, self.phase
        )
        if self.cfg.run.parallel:
            try:
                self.engine = engine_for(self.trainer, self.cfg, run_tag(self.store.dir))
            except ClusterError as err:
                raise RunRefused(str(err)) from None
            self.say(f"training on {self.engine.where}, {plural(self.engine.slots, 'worker')}")

    def _check_prepare_unchanged(self, prepare: Path) -> None:
        """prepare.py defines the metric: a run's iterations are only comparable under one."""
        digest = hashlib.sha256(
            read_plain(prepare) or b""
        ).hexdigest()  # none: a log-scored workspace
        if self.store.get("prepare_sha256", digest) != digest:
            raise RunRefused(
                f"prepare.py changed since run {self.store.run_id} started, so its scores would "
                "not be comparable; restore it, or start a new run with --new"
            )
        self.store.set(prepare_sha256=digest)

    def _iterate_until_done(self) -> LoopResult:
        history = self.store.iterations()
        if history:  # a kill after an iteration's row, before its last writes: bring them in step
            best = incumbent(history, self.cfg.better)
            if best.commit:
                self.repo.set_ref("refs/heads/best", best.commit)
            write_results(self.store.dir / "results.tsv", history, self.cfg)
        if self.engine is not None:
            return Scheduler(self, self.engine).run(history)
        if not history:
            self.record(self._baseline(), history)
        if baseline_failed(history[0]):
            return self.baseline_stop(history[0])
        while len(history) - 1 < self.cfg.loop.iterations:
            stop = self.before_proposal(history)
            if stop:
                return LoopResult(FINISHED, stop)
            try:
                it = self._experiment(self.next_number(history), history)
            except AgentExhausted as err:
                return LoopResult(FINISHED, str(err))
            self.record(it, history)
            if stop := self.streak_stop(history):
                return LoopResult(STOPPED, stop)
        return LoopResult(FINISHED, f"{plural(len(history) - 1, 'iteration')} done")

    def before_proposal(self, history: list[Iteration]) -> str | None:
        """Why no more proposals may be asked for (the cost, a plateau), after the strategist
        when it is due (it costs too); None to go on."""
        stop = self.cost_limit(history)
        if stop is None:
            self.fixed["program.md"] = self.strategist.revise(history)
            since, limit = self.strategist.changed_after(), self.cfg.loop.stop_after
            stop = self.cost_limit(history) or plateau_stop(history, since, limit)
        return stop

    def streak_stop(self, history: list[Iteration]) -> str | None:
        """Why the run must stop after its last record: failures in a row, the same way."""
        streak, limit, last = (
            failure_streak(history),
            self.cfg.loop.max_consecutive_failures,
            history[-1],
        )
        if limit and streak >= limit:
            return (
                f"{plural(streak, 'iteration')} in a row failed the same way ({last.status}: "
                f"{last.reason}); fix the cause, then run again to resume"
            )
        return None

    def next_number(self, history: list[Iteration]) -> int:
        """The next iteration to train: the oldest proposal a stop left untrained, else a new
        number (a parallel run may have recorded later ones first)."""
        recorded = {it.iteration for it in history}
        left = [n for n in self.store.pending_numbers() if n not in recorded]
        return left[0] if left else self.new_number(history)

    def new_number(self, history: list[Iteration]) -> int:
        """A number no iteration has, recorded or proposed."""
        return max({it.iteration for it in history} | set(self.store.pending_numbers())) + 1

    def cost_limit(self, history: list[Iteration]) -> str | None:
        """Why the run must stop for its cost (the agent's and the strategist's), or None."""
        spent = sum(it.usage.cost_usd or 0.0 for it in history) + self.strategist.spent()
        limit = self.cfg.loop.max_cost_usd
        if limit is not None and spent >= limit:
            return f"cost limit reached: ${spent:.2f} of ${limit:.2f}"
        return None

    def baseline_stop(self, it: Iteration) -> LoopResult:
        """A baseline that crashes or scores nothing: every experiment would start from it."""
        tail = log_tail(it.log_path)
        if tail:
            self.say(f"the end of the baseline's log ({it.log_path}):")
            for line in tail:
                self.say(f"  | {line}")
        return LoopResult(
            STOPPED,
            f"the baseline failed ({it.reason or 'no score'}); fix train.py "
            "(`autoresearch baseline` tries it), then start a new run with --new",
        )

    def phase(self, name: str, iteration: int, **info) -> None:
        """What the run is doing now: the store's `live` entry (read by `status --json` and the
        dashboard while the run goes on) and the terminal display get the same record."""
        live = {"phase": name, "iteration": iteration, "started_at": time.time(), **info}
        if training := [n for n in self.in_flight() if n != iteration]:
            live["in_flight"] = training  # the others training meanwhile (a parallel run)
        self.store.set(live=live)
        if self.display is not None:
            self.display.phase(live)

    # --- one iteration ---
    def copy_workspace(self, name: str, train_py: str | None) -> Path:
        workdir = copy_for_experiment(self.source, self.root / name, train_py)
        if self.strategist.on:  # program.md with the strategy the iteration runs under
            (workdir / "program.md").write_bytes(self.fixed["program.md"])
        return workdir

    def workdir(self, n: int, train_py: str | None) -> Path:
        return self.copy_workspace(f"{n:04d}", train_py)

    def baseline_iteration(self) -> tuple[Iteration, Path]:
        """Iteration 0, and the copy of the workspace it trains in first."""
        workdir = self.workdir(0, None)
        it = Iteration(
            iteration=0,
            status=BASELINE,
            explanation="Baseline: train.py as given, unchanged.",
            train_py=decode_source((workdir / "train.py").read_bytes()),  # a BOM, as Python
            started_at=time.time(),
            strategy=self.strategist.version,
        )
        self.say("iteration 0: training the baseline")
        return it, workdir

    def _baseline(self) -> Iteration:
        it, workdir = self.baseline_iteration()
        self.trials.train(it, workdir, None, [])
        if it.status != CRASH:
            it.status = BASELINE
        return it

    def _experiment(self, n: int, history: list[Iteration]) -> Iteration:
        parent = incumbent(history, self.cfg.better)
        found = self.store.pending(n)  # a proposal in training when the run stopped
        if found is None:
            self.store.drop_runs(n)  # none can belong to a proposal that was never stored
            it, notes, workdir = self._proposal(n, parent, history)
        else:
            (it, notes), workdir = found, self.workdir(n, found[0].train_py)
            self.say(f"iteration {n}: resuming the proposal recorded before the stop")
        if it.reason is None:
            self.say(f"iteration {n}: training: {shorten(it.description, DESCRIPTION_CHARS)}")
            self.trials.train(it, workdir, parent, history)
        if notes:  # recorded with the iteration
            it.reason = "; ".join([it.reason, *notes] if it.reason else notes)
        return it

    # --- recording ---
    def record(self, it: Iteration, history: list[Iteration]) -> None:
        """Files, git, then the row; appended to history, results.tsv rewritten from it."""
        it.wall_seconds = round(time.time() - it.started_at, 3)
        if it.train_py:
            parent = next((h for h in history if h.iteration == it.parent), None)
            files: dict[str, str | bytes] = {k: v for k, v in self.fixed.items() if v is not None}
            files["train.py"] = it.train_py
            message = f"iteration {it.iteration}: {it.status} {fmt(it.value)}\n\n{it.explanation}"
            it.commit = self.repo.commit(files, message, parent.commit if parent else None)
            self.repo.set_ref(f"refs/experiments/{it.iteration:04d}", it.commit)
            if it.status in (KEEP, BASELINE):
                self.repo.set_ref("refs/heads/best", it.commit)
        self.store.record(it)
        mark_inflight(self.store, None)
        self.store.set(live=None)  # until the next phase begins
        shutil.rmtree(self.root / f"{it.iteration:04d}", ignore_errors=True)
        history.append(it)
        write_results(self.store.dir / "results.tsv", history, self.cfg)
        value = f"{self.cfg.metric} {fmt(it.value)}"
        self.say(
            f"iteration {it.iteration}: {it.status} {value}"
            + (f" ({it.reason})" if it.reason else "")
        )
        if it.iteration == 0 and (notice := budget_notice(it.log_path)):
            self.say(f"iteration 0: its log says: {one_line(notice)}")
        noise = estimate(history)
        if it.iteration == 0 and noise.sigma is not None:
            self.say(f"noise floor: {self.cfg.metric} varies by {noise.sigma:.4f} between seeds "
                     f"(standard deviation over {plural(noise.runs, 'run')})")  # fmt: skip
        if self.display is not None:
            self.display.recorded(history)


def budget_notice(log_path: Path | str | None) -> str | None:
    """The `budget: ...` line a train.py prints when its budget does not fit (the template: a
    first epoch longer than the budget), to repeat when the baseline is recorded."""
    try:
        with open(log_path or "", errors="replace") as log:
            return next((line.strip() for line in log if line.startswith("budget: ")), None)
    except OSError:
        return None
