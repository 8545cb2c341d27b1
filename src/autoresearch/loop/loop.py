"""A run: its lock, its copy of the workspace, its trainer and engine, and the driver
(scheduler.py) that iterates until done; resumable at any point."""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from autoresearch.agents.base import Agent, AgentError
from autoresearch.agents.command import CommandAgent
from autoresearch.agents.sandboxed import unsandboxed_warning
from autoresearch.core.config import Config
from autoresearch.core.history import History
from autoresearch.core.records import INTERRUPTED, RUNNING, STOPPED
from autoresearch.core.text import plural
from autoresearch.loop.parts import Collaborators, LoopResult
from autoresearch.loop.promotion import promote_at_end, promote_due
from autoresearch.loop.proposing import Proposer
from autoresearch.loop.recorder import Recorder
from autoresearch.loop.runs import RunRefused
from autoresearch.loop.scheduler import Scheduler
from autoresearch.loop.stop_rules import StopRules, deadline
from autoresearch.loop.strategist import Strategist, TextAgent
from autoresearch.loop.trials import Trials
from autoresearch.prompt.context import ContextTooSmall
from autoresearch.store.gitrepo import ExperimentRepo
from autoresearch.store.layout import SNAPSHOT
from autoresearch.store.live import Live
from autoresearch.store.runstate import (
    RunLock,
    describe,
    kill_leftover,
    run_tag,
    signal_of,
    tag_processes,
)
from autoresearch.store.store import Store
from autoresearch.store.workdirs import Workdirs
from autoresearch.store.workspace import snapshot
from autoresearch.training import task
from autoresearch.training.experiment import FIXED_FILES, Trainer, experiments_root, read_plain
from autoresearch.training.placement import engine_for
from autoresearch.training.ray.cluster import ClusterError


class Loop:
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
        self.repo = ExperimentRepo(store.dir / "repo", create=store.recorded() == 0)
        self.live = Live(store, display)
        # off without an agent of its own
        self.strategist = Strategist(cfg, store, self.repo, strategist, say, self.live.phase)
        self.source = store.dir / SNAPSHOT
        self.root = experiments_root(store.dir)
        self.fixed: dict[str, bytes | None] = {}  # the run's prepare.py and program.md (None:
        # absent), read at start()
        program = lambda: self.fixed["program.md"] if self.strategist.on else None  # noqa: E731
        self.workdirs = Workdirs(self.source, self.root, program)
        self.trainer: Trainer | None = None
        self.engine = None  # runner/engines.py: where runs train while the agent proposes
        until_at = deadline(cfg.loop.until, time.time())  # no proposal after it (--until)
        self.stop_rules = StopRules(cfg, store, self.strategist, say, until_at, workspace)

    # --- the run ---
    def run(self) -> LoopResult:
        with RunLock(self.store), tag_processes(self.store.dir):
            kill_leftover(self.store)
            self.start()
            # the iterations this session goes to (a resume may raise them), for status and serve
            self.store.set(state=RUNNING, stop_reason=None)
            try:
                result = self._iterate_until_done()
                promote_at_end(self, result)
            except KeyboardInterrupt as interrupt:  # Ctrl-C, SIGTERM, SIGHUP
                signum = signal_of(interrupt)
                result = LoopResult(INTERRUPTED, f"interrupted by {describe(signum)}", signum)
            except AgentError as err:
                result = LoopResult(STOPPED, f"agent {self.agent.name}: {err}")
            except ContextTooSmall as err:
                result = LoopResult(STOPPED, str(err))
            self.store.set(state=result.state, stop_reason=result.message)
            self.live.idle()
            if self.engine is not None:
                self.engine.close()
            kill_leftover(self.store)  # an agent or training a signal left behind
            shutil.rmtree(self.root, ignore_errors=True)  # the data view; made again on resume
            return result

    def deadline(self) -> float | None:
        """When no more proposals may be asked for ([loop] until); None without a time."""
        return self.stop_rules.deadline

    def start(self) -> None:
        """Before the first iteration: the run's copy of the workspace, the data, the trainer."""
        # Scores come from the workspace's prepare.py, imported once: it must be the run's.
        self._check_prepare_unchanged(self.workspace / "prepare.py")
        if not self.source.is_dir():  # a new run, or one from a release without snapshots
            snapshot(self.workspace, self.source)
        self.fixed.update({name: read_plain(self.source / name) for name in FIXED_FILES})
        self.fixed["program.md"] = self.strategist.start(self.fixed["program.md"])
        task.ensure_data(self.workspace, self.cfg)
        self.trainer = Trainer.prepare(self.workspace, self.cfg, self.root)
        if self.trainer.warning:
            self.say(f"warning: {self.trainer.warning}")
        if not self.trainer.sandboxed and isinstance(self.agent, CommandAgent):
            self.say(f"warning: {unsandboxed_warning(self.agent.name)}")
        try:
            self.engine = engine_for(self.trainer, self.cfg, run_tag(self.store.dir))
        except ClusterError as err:
            raise RunRefused(str(err)) from None
        if self.cfg.run.parallel:
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
        history = History(self.store.iterations(), self.cfg.better)
        parts = Collaborators(
            proposer=Proposer(
                self.cfg, self.store, self.agent, self.trainer, self.strategist, self.fixed,
                self.workspace, self.workdirs, self.live, self.say,
            ),
            trials=Trials(self.cfg, self.store, self.fixed, self.say, self.live),
            recorder=Recorder(
                self.cfg, self.store, self.repo, self.fixed, self.workdirs, self.live, self.say
            ),
            stops=self.stop_rules,
            strategist=self.strategist,
            workdirs=self.workdirs,
            live=self.live,
            fixed=self.fixed,
            say=self.say,
            promote_due=lambda history: promote_due(self, history),
        )  # fmt: skip
        parts.recorder.bring_in_step(history)  # a kill after a row, before its last writes
        sequential = not self.cfg.run.parallel
        return Scheduler(self.cfg, self.store, self.engine, parts, sequential).run(history)
