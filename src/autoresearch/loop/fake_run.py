"""A run of the one driver (scheduler.py) over the fake engine (fake_engine.py), for tests and
benchmarks of scheduling: the real store, trials, decisions, stops and recorder, with an agent
that proposes at once (a numbered train.py) and no training process anywhere. Only the agent and
the engine are stand-ins; `repo` may be one too (benchmarks/scheduler_scale.py: git is timed
by benchmarks/loop_overhead.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from autoresearch.agents.base import AgentExhausted, Proposal, Request
from autoresearch.core.config import Config
from autoresearch.core.history import History
from autoresearch.core.records import INVALID, Iteration, TrainingRun
from autoresearch.loop.parts import Collaborators, LoopResult
from autoresearch.loop.proposing import Repaired
from autoresearch.loop.recorder import Recorder
from autoresearch.loop.scheduler import Scheduler
from autoresearch.loop.stop_rules import StopRules
from autoresearch.loop.strategist import Strategist
from autoresearch.loop.trials import Trials
from autoresearch.store.gitrepo import ExperimentRepo
from autoresearch.store.layout import is_run
from autoresearch.store.live import Live
from autoresearch.store.store import Store
from autoresearch.store.workdirs import Workdirs
from autoresearch.training.fake_engine import FakeEngine

PROGRAM = b"# program\n"


@dataclass
class Asked:
    n: int
    parent: Iteration
    request: Request
    started: float
    other: Iteration | None = None


class InstantProposer:
    """Proposes `train.py` number n for iteration n at once (ask, propose, accept: Proposer's
    three steps; a repair's: ask_repair, propose, accept_repair); `proposals` caps them (then the
    agent is exhausted), `invalid` are refused. Repair r of iteration n is `N = n  # fixed r`."""

    can_repair = True

    def __init__(self, store: Store, workdirs: Workdirs, proposals=None, invalid=()):
        self.store, self.workdirs = store, workdirs
        self.proposals, self.invalid = proposals, set(invalid)
        self.asked: list[tuple[int, int, list[int]]] = []  # (n, parent, in flight) per ask
        self.repairs: list[tuple[int, int, list[int]]] = []  # (n, repair, recorded) per repair
        self.agent = self

    name = "instant"

    def ask(self, n, parent, history, in_flight=(), other=None) -> Asked:
        self.asked.append((n, parent.iteration, [it.iteration for it in in_flight]))
        request = Request(iteration=n, prompt=f"propose {n}", train_py=parent.train_py,
                          workdir=self.workdirs.root, history=history)  # fmt: skip
        return Asked(n, parent, request, time.time(), other)

    def ask_repair(self, it: Iteration, crashed: TrainingRun, history) -> Asked:
        self.repairs.append((it.iteration, it.repairs + 1, [f.iteration for f in history]))
        request = Request(iteration=it.iteration, prompt=f"repair {crashed.reason}",
                          train_py=it.train_py, workdir=self.workdirs.root, history=history,
                          repair=it.repairs + 1)  # fmt: skip
        return Asked(it.iteration, it, request, time.time())

    def propose(self, request: Request) -> Proposal:
        if request.repair:
            n, r = request.iteration, request.repair
            return Proposal(f"N = {n}  # fixed {r}\n", explanation=f"fix {r}", raw_output="ok")
        if self.proposals is not None and len(self.asked) > self.proposals:
            raise AgentExhausted(f"no more than {self.proposals} proposals")
        return Proposal(f"N = {request.iteration}\n", explanation=f"idea {request.iteration}")

    def accept_repair(self, asked: Asked, proposal: Proposal, parent: Iteration) -> Repaired:
        asked.parent.repairs = asked.request.repair
        workdir = self.workdirs.copy(asked.n, 0, proposal.train_py)
        return Repaired(proposal.train_py, proposal.explanation, None, [], workdir)

    def accept(self, asked: Asked, proposal: Proposal):
        it = Iteration(
            iteration=asked.n, status=INVALID, parent=asked.parent.iteration,
            second_parent=asked.other.iteration if asked.other else None,
            explanation=proposal.explanation, train_py=proposal.train_py,
            started_at=asked.started, agent=self.name,
        )  # fmt: skip
        if asked.n in self.invalid:
            it.reason = "refused (scripted)"
            return it, [], None
        self.store.set_pending(it, [])
        return it, [], self.workdirs.copy(asked.n, 0, it.train_py)


def fake_run(
    folder: Path,
    cfg: Config,
    engine: FakeEngine,
    sequential=False,
    repo=None,
    agent=InstantProposer,
    train_py="N = 0\n",
    **proposing,
) -> tuple[LoopResult, Store, InstantProposer]:
    """Drive a run in folder (made, or resumed where it has a store) to its end; agent: the
    stand-in's class (InstantProposer's), train_py: the baseline's."""
    source = folder / "workspace"
    if not source.is_dir():
        source.mkdir(parents=True)
        (source / "train.py").write_text(train_py)
        (source / "program.md").write_bytes(PROGRAM)
    store = Store(folder) if is_run(folder) else Store.create(folder, cfg.model_dump())
    said: list[str] = []
    repo = repo or ExperimentRepo(folder / "repo", create=store.recorded() == 0)
    live = Live(store)
    strategist = Strategist(cfg, store, repo, None, said.append, live.phase)
    fixed = {"prepare.py": None, "program.md": strategist.start(PROGRAM)}
    workdirs = Workdirs(source, folder / "experiments", lambda: None)
    proposer = agent(store, workdirs, **proposing)
    parts = Collaborators(
        proposer=proposer, trials=Trials(cfg, store, fixed, said.append, live),
        recorder=Recorder(cfg, store, repo, fixed, workdirs, live, said.append),
        stops=StopRules(cfg, store, strategist, said.append), strategist=strategist,
        workdirs=workdirs, live=live, fixed=fixed, say=said.append,
        promote_due=lambda history: None,  # no trainer: nothing to promote with
    )  # fmt: skip
    history = History(store.iterations(), cfg.better)
    parts.recorder.bring_in_step(history)
    result = Scheduler(cfg, store, engine, parts, sequential).run(history)
    return result, store, proposer
