"""Asking the agent for a proposal and checking its answer: the part of the loop that talks to
the agent. The driver (scheduler.py) asks in its own thread, has the agent answer in another
(propose), and has the answer checked back in its own (accept)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from autoresearch.agents.base import Agent, AgentError, Proposal, Request, Wrap
from autoresearch.agents.sandboxed import wrap_for
from autoresearch.agents.validate import check_proposal
from autoresearch.core.config import Config
from autoresearch.core.records import INVALID, PROPOSING, Iteration, TrainingRun
from autoresearch.loop.strategist import Strategist
from autoresearch.prompt.context import render_prompt, room_problem
from autoresearch.prompt.repair import render_repair
from autoresearch.prompt.runfacts import unified_diff
from autoresearch.prompt.stable import render_stable
from autoresearch.store.live import Live
from autoresearch.store.store import Store
from autoresearch.store.workdirs import Workdirs
from autoresearch.store.workspace import changed_files, fingerprint
from autoresearch.training.experiment import Trainer


@dataclass
class Asked:
    """A proposal asked for: what the agent was given, and what checking its answer needs."""

    n: int
    parent: Iteration
    request: Request
    workdir: Path
    before: dict[str, str]  # the workdir's fingerprint when the agent got it
    started: float
    other: Iteration | None = None  # a second parent, whose change it merges in


@dataclass
class Repaired:
    """An agent's repair, checked: the fixed train.py and why it cannot be trained (None: it
    can), the notes to record, the copy of the workspace it trains in."""

    train_py: str
    explanation: str
    reason: str | None
    notes: list[str]
    workdir: Path


class Proposer:
    def __init__(
        self,
        cfg: Config,
        store: Store,
        agent: Agent,
        trainer: Trainer,  # its secret (the agent never sees it) and whether it sandboxes
        strategist: Strategist,  # the strategy version a proposal runs under
        fixed: dict[str, bytes | None],  # the run's program.md (the driver's, kept current)
        workspace: Path,  # the user's: a change there is noted, never used
        workdirs: Workdirs,
        live: Live,
        say: Callable[[str], None],
    ):
        self.cfg, self.store, self.agent, self.trainer = cfg, store, agent, trainer
        self.strategist, self.fixed, self.workspace = strategist, fixed, workspace
        self.workdirs, self.live, self.say = workdirs, live, say
        self.seen_workspace: dict[str, str] | None = None

    def _note_workspace_changes(self) -> None:
        """A user may edit the workspace during a run: the run keeps its own copy, and says so."""
        now = fingerprint(self.workspace, skip=())
        if self.seen_workspace is None:
            self.seen_workspace = fingerprint(self.workdirs.source, skip=())
        changed = changed_files(self.seen_workspace, now)
        if changed:
            self.say(
                f"note: the workspace changed since this run started ({', '.join(changed[:5])}); "
                "the run keeps using its own copy (`autoresearch run --new` uses the new files)"
            )
            self.seen_workspace = now

    def ask(
        self, n: int, parent: Iteration, history: list[Iteration], in_flight=(), other=None
    ) -> Asked:
        """The request for iteration n's proposal from parent (in_flight: the experiments
        proposed and not recorded yet, which the prompt lists; other: a second parent whose
        change the agent is asked to merge in)."""
        started = time.time()
        self._note_workspace_changes()
        workdir = self.workdirs.copy(n, 0, parent.train_py)
        program = self.fixed["program.md"].decode("utf-8-sig", errors="replace")
        prompt = render_prompt(program, parent, history, self.cfg, in_flight, other)
        self.say(f"iteration {n}: asking {self.agent.name} for a proposal")
        self.live.phase(PROPOSING, n, agent=self.agent.name)
        request = Request(
            iteration=n, prompt=prompt, train_py=parent.train_py, workdir=workdir,
            history=history, metric=self.cfg.metric, direction=self.cfg.direction,
            secret=self.trainer.secret, wrap=self._agent_wrap(workdir),
            stable_prompt=render_stable(program, parent, self.cfg, history),
            max_train_py_kb=self.cfg.loop.max_train_py_kb,
        )  # fmt: skip
        return Asked(n, parent, request, workdir, fingerprint(workdir), started, other)

    def accept(self, asked: Asked, proposal: Proposal) -> tuple[Iteration, list[str], Path]:
        """The agent's answer checked: an iteration (invalid, with its reason, or pending: stored
        before any training, so that a resume trains it without asking again), the notes to
        record with it, and the copy of the workspace it trains in."""
        n, parent = asked.n, asked.parent
        for note in proposal.notes:
            self.say(f"iteration {n}: note: {note}")
        it = Iteration(
            iteration=n,
            status=INVALID,
            parent=parent.iteration,
            second_parent=asked.other.iteration if asked.other else None,
            explanation=proposal.explanation,
            train_py=proposal.train_py or "",
            prompt=asked.request.prompt,
            raw_output=proposal.raw_output,
            usage=proposal.usage,
            agent_seconds=round(time.time() - asked.started, 3),
            started_at=asked.started,
            agent=self.agent.name,
            model=proposal.model
            or getattr(self.agent, "model", None)
            or self.cfg.agent.model
            or "",
            strategy=self.strategist.version,
        )
        it.diff = unified_diff(parent.train_py, it.train_py) if it.train_py else ""
        it.reason, notes, workdir = self._check(asked, proposal, parent.train_py, parent)
        if it.reason is None:
            self.store.set_pending(it, notes)
        return it, notes, workdir

    def _check(
        self, asked: Asked, proposal: Proposal, before: str, parent: Iteration
    ) -> tuple[str | None, list[str], Path]:
        """Why the train.py proposed (in place of before, from parent) cannot be trained (None:
        it can), the notes to record, and the clean copy of the workspace it trains in."""
        reverted = [*proposal.reverted, *changed_files(asked.before, fingerprint(asked.workdir))]
        # Only train.py may change: it trains in a clean copy, so nothing else the agent left
        # (bytecode, links) travels into the experiment.
        workdir = self.workdirs.copy(asked.n, 0, proposal.train_py)
        reason = check_proposal(proposal, before, self.cfg.loop.max_train_py_kb)
        if reason is None:
            program = self.fixed["program.md"].decode("utf-8-sig", errors="replace")
            candidate = replace(parent, train_py=proposal.train_py)  # its run as a guess
            reason = room_problem(program, candidate, asked.request.history, self.cfg)
        notes = list(proposal.notes)
        if reverted:
            notes.append(f"reverted the agent's changes to {', '.join(sorted(set(reverted)))}")
        if reason is None:
            (workdir / "train.py").write_text(proposal.train_py, encoding="utf-8")
        return reason, notes, workdir

    @property
    def can_repair(self) -> bool:
        return self.agent.can_repair

    def ask_repair(self, it: Iteration, crashed: TrainingRun, history: list[Iteration]) -> Asked:
        """The request for repair it.repairs + 1 of iteration it, whose train.py crashed with an
        exception in the run `crashed`: the agent gets that train.py to fix."""
        started, n = time.time(), it.iteration
        workdir = self.workdirs.copy(n, 0, it.train_py)
        program = self.fixed["program.md"].decode("utf-8-sig", errors="replace")
        prompt = render_repair(program, it, crashed, self.cfg)
        self.say(f"iteration {n}: asking {self.agent.name} to repair its crash")
        self.live.phase(PROPOSING, n, agent=self.agent.name)
        request = Request(
            iteration=n, prompt=prompt, train_py=it.train_py, workdir=workdir, history=history,
            metric=self.cfg.metric, direction=self.cfg.direction, secret=self.trainer.secret,
            wrap=self._agent_wrap(workdir), max_train_py_kb=self.cfg.loop.max_train_py_kb,
            repair=it.repairs + 1,
        )  # fmt: skip
        return Asked(n, it, request, workdir, fingerprint(workdir), started)

    def accept_repair(self, asked: Asked, proposal: Proposal, parent: Iteration) -> Repaired:
        """The agent's repair of asked.parent (the iteration that crashed, from parent),
        checked like a proposal; what it cost is added to the iteration either way."""
        it = asked.parent
        it.repairs = asked.request.repair
        it.usage += proposal.usage
        it.agent_seconds = round(it.agent_seconds + time.time() - asked.started, 3)
        for note in proposal.notes:
            self.say(f"iteration {it.iteration}: note: {note}")
        reason, notes, workdir = self._check(asked, proposal, it.train_py, parent)
        return Repaired(proposal.train_py or "", proposal.explanation, reason, notes, workdir)

    def propose(self, request: Request) -> Proposal:
        try:
            return self.agent.propose(request)
        except (AgentError, KeyboardInterrupt):
            raise
        except Exception as err:  # noqa: BLE001 - a broken proposal is a recorded invalid one
            return Proposal(None, invalid_reason=f"agent failed: {type(err).__name__}: {err}")

    def _agent_wrap(self, workdir: Path) -> Wrap | None:
        return wrap_for(self.trainer.sandboxed, self.trainer.secret, workdir)
