"""The research loop: propose, check, train, score, decide, record; resumable at any point."""

from __future__ import annotations

import difflib
import hashlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from autoresearch import task
from autoresearch.agents.base import Agent, AgentError, AgentExhausted, Proposal, Request
from autoresearch.agents.validate import check_proposal
from autoresearch.config import Config
from autoresearch.context import fmt, render_prompt, render_stable
from autoresearch.decide import decide
from autoresearch.experiment import run_experiment
from autoresearch.gitrepo import ExperimentRepo
from autoresearch.records import BASELINE, CRASH, INVALID, KEEP, Iteration
from autoresearch.results import write_results
from autoresearch.runstate import RunLock, kill_leftover, mark_inflight, tag_processes
from autoresearch.store import Store, StoreError, incumbent
from autoresearch.workspace import changed_files, copy_for_experiment, fingerprint

FIXED_FILES = ("prepare.py", "program.md")
FINISHED, INTERRUPTED, RUNNING = "finished", "interrupted", "running"


@dataclass
class LoopResult:
    state: str  # finished | interrupted
    message: str


def unified_diff(old: str, new: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), "a/train.py", "b/train.py"
    )
    return "".join(lines)


class Loop:
    def __init__(
        self, workspace: Path, cfg: Config, store: Store, agent: Agent, say: Callable[[str], None]
    ):
        self.workspace, self.cfg, self.store, self.agent, self.say = (
            workspace, cfg, store, agent, say,
        )  # fmt: skip
        self.repo = ExperimentRepo(store.dir / "repo")
        self.fixed = {name: (workspace / name).read_bytes() for name in FIXED_FILES}

    # --- the run ---
    def run(self) -> LoopResult:
        with RunLock(self.store), tag_processes(self.store):
            kill_leftover(self.store)
            self._check_prepare_unchanged()
            self.store.set(state=RUNNING, stop_reason=None)
            try:
                result = self._iterate_until_done()
            except KeyboardInterrupt:
                result = LoopResult(INTERRUPTED, "interrupted by Ctrl-C")
            except AgentError as err:
                result = LoopResult(INTERRUPTED, f"agent {self.agent.name}: {err}")
            self.store.set(state=result.state, stop_reason=result.message)
            mark_inflight(self.store, None)
            return result

    def _check_prepare_unchanged(self) -> None:
        """prepare.py defines the metric: a run's iterations are only comparable under one."""
        digest = hashlib.sha256(self.fixed["prepare.py"]).hexdigest()
        if self.store.get("prepare_sha256", digest) != digest:
            raise StoreError(
                f"prepare.py changed since run {self.store.run_id} started, so its scores would "
                "not be comparable; restore it, or start a new run with --new"
            )
        self.store.set(prepare_sha256=digest)

    def _iterate_until_done(self) -> LoopResult:
        history = self.store.iterations()
        task.ensure_data(self.workspace, self.cfg)
        if not history:
            self._record(self._baseline(), history)
        else:  # a kill after an iteration's row, before its last writes: bring them in step
            kept = [it for it in history if it.status in (KEEP, BASELINE) and it.commit]
            if kept:
                self.repo.set_ref("refs/heads/best", kept[-1].commit)
            write_results(self.store.dir / "results.tsv", history, self.cfg)
        while len(history) - 1 < self.cfg.loop.iterations:
            spent = sum(it.usage.cost_usd or 0.0 for it in history)
            limit = self.cfg.loop.max_cost_usd
            if limit is not None and spent >= limit:
                return LoopResult(FINISHED, f"cost limit reached: ${spent:.2f} of ${limit:.2f}")
            try:
                it = self._experiment(len(history), history)
            except AgentExhausted as err:
                return LoopResult(FINISHED, str(err))
            self._record(it, history)
        return LoopResult(FINISHED, f"{len(history) - 1} iterations done")

    # --- one iteration ---
    def _workdir(self, n: int, train_py: str | None) -> Path:
        return copy_for_experiment(self.workspace, self.store.dir / "work" / f"{n:04d}", train_py)

    def _baseline(self) -> Iteration:
        started = time.time()
        workdir = self._workdir(0, None)
        it = Iteration(
            iteration=0,
            status=BASELINE,
            explanation="Baseline: train.py as given, unchanged.",
            train_py=(workdir / "train.py").read_text(),
            started_at=started,
        )
        self.say("iteration 0: training the baseline")
        self._train(it, workdir, None)
        if it.status != CRASH:
            it.status = BASELINE
        return it

    def _experiment(self, n: int, history: list[Iteration]) -> Iteration:
        started = time.time()
        parent = incumbent(history)
        workdir = self._workdir(n, parent.train_py)
        before = fingerprint(workdir)
        program = (self.workspace / "program.md").read_text()
        prompt = render_prompt(program, parent, history, self.cfg)
        self.say(f"iteration {n}: asking {self.agent.name} for a proposal")
        proposal = self._propose(Request(
            iteration=n, prompt=prompt, train_py=parent.train_py, workdir=workdir,
            history=history, metric=self.cfg.metric, direction=self.cfg.direction,
            stable_prompt=render_stable(program, parent, self.cfg),
        ))  # fmt: skip
        for note in proposal.notes:
            self.say(f"iteration {n}: note: {note}")
        it = Iteration(
            iteration=n,
            status=INVALID,
            parent=parent.iteration,
            explanation=proposal.explanation,
            train_py=proposal.train_py or "",
            prompt=prompt,
            raw_output=proposal.raw_output,
            usage=proposal.usage,
            agent_seconds=round(time.time() - started, 3),
            started_at=started,
        )
        it.diff = unified_diff(parent.train_py, it.train_py) if it.train_py else ""
        reverted = [
            *proposal.reverted,
            *changed_files(before, fingerprint(workdir)),
            *(f"the workspace's {name}" for name in self._restore_fixed_files()),
        ]
        if reverted:  # only train.py may change: start again from a clean copy
            workdir = self._workdir(n, proposal.train_py)
        it.reason = check_proposal(proposal, parent.train_py)
        if it.reason is None:
            (workdir / "train.py").write_text(it.train_py)
            self.say(f"iteration {n}: training: {it.description[:80]}")
            self._train(it, workdir, parent.value)
        notes = list(proposal.notes)
        if reverted:
            notes.append(f"reverted the agent's changes to {', '.join(sorted(set(reverted)))}")
        if notes:  # recorded with the iteration
            it.reason = "; ".join([it.reason, *notes] if it.reason else notes)
        return it

    def _propose(self, request: Request) -> Proposal:
        try:
            return self.agent.propose(request)
        except (AgentError, KeyboardInterrupt):
            raise
        except Exception as err:  # noqa: BLE001 - a broken proposal is a recorded invalid one
            return Proposal(None, invalid_reason=f"agent failed: {type(err).__name__}: {err}")

    def _train(self, it: Iteration, workdir: Path, incumbent_value: float | None) -> None:
        outcome = run_experiment(
            self.workspace,
            self.cfg,
            workdir,
            on_start=lambda pid: mark_inflight(self.store, it.iteration, pid),
        )
        it.status, it.reason = decide(self.cfg, outcome, incumbent_value)
        it.value = outcome.value
        tampered = self._restore_fixed_files()
        if tampered:
            it.status, it.value = CRASH, None
            it.reason = f"integrity: the experiment changed {', '.join(tampered)} (restored)"
        it.train_seconds, it.peak_memory_mb = outcome.train_seconds, outcome.peak_memory_mb
        folder = self.store.iteration_dir(it.iteration)
        folder.mkdir(parents=True, exist_ok=True)
        for name in (outcome.log_path.name, "predictions.npy"):
            if (workdir / name).is_file():
                shutil.copy(workdir / name, folder / name)
        it.log_path = str(folder / outcome.log_path.name)

    def _restore_fixed_files(self) -> list[str]:
        changed = []
        for name, content in self.fixed.items():
            path = self.workspace / name
            if not path.is_file() or path.read_bytes() != content:
                path.write_bytes(content)
                changed.append(name)
        return changed

    # --- recording ---
    def _record(self, it: Iteration, history: list[Iteration]) -> None:
        """Files, git, then the row; appended to history, results.tsv rewritten from it."""
        it.wall_seconds = round(time.time() - it.started_at, 3)
        if it.train_py:
            parent = next((h for h in history if h.iteration == it.parent), None)
            files = {name: content.decode() for name, content in self.fixed.items()}
            files["train.py"] = it.train_py
            message = f"iteration {it.iteration}: {it.status} {fmt(it.value)}\n\n{it.explanation}"
            it.commit = self.repo.commit(files, message, parent.commit if parent else None)
            self.repo.set_ref(f"refs/experiments/{it.iteration:04d}", it.commit)
            if it.status in (KEEP, BASELINE):
                self.repo.set_ref("refs/heads/best", it.commit)
        self.store.record(it)
        mark_inflight(self.store, None)
        shutil.rmtree(self.store.dir / "work" / f"{it.iteration:04d}", ignore_errors=True)
        history.append(it)
        write_results(self.store.dir / "results.tsv", history, self.cfg)
        value = f"{self.cfg.metric} {fmt(it.value)}"
        self.say(
            f"iteration {it.iteration}: {it.status} {value}"
            + (f" ({it.reason})" if it.reason else "")
        )
