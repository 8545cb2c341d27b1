"""What the one driver (scheduler.py) works with: its collaborators, each with one job; an
iteration in flight; the result a run ends with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from autoresearch.core.history import History
from autoresearch.core.records import Iteration, TrainingRun
from autoresearch.loop.proposing import Proposer
from autoresearch.loop.recorder import Recorder
from autoresearch.loop.stop_rules import StopRules
from autoresearch.loop.strategist import Strategist
from autoresearch.loop.trials import Trials
from autoresearch.store.live import Live
from autoresearch.store.workdirs import Workdirs
from autoresearch.training.engines import Job


@dataclass
class LoopResult:
    state: str  # finished | interrupted | stopped
    message: str
    signum: int | None = None  # the signal that interrupted it


@dataclass
class Flight:
    """An iteration in training: its runs recorded, and those training now (by run number)."""

    it: Iteration
    first: Path  # the copy of the workspace its first run trains in
    notes: list[str]  # recorded with it
    done: dict[int, TrainingRun] = field(default_factory=dict)
    running: dict[int, Job] = field(default_factory=dict)

    def runs(self) -> list[TrainingRun]:
        return [self.done[k] for k in sorted(self.done)]


@dataclass
class Collaborators:
    """What the driver drives: each with one job."""

    proposer: Proposer  # asks the agent, checks its answer
    trials: Trials  # how many runs an iteration needs, records each, decides
    recorder: Recorder  # records a decided iteration
    stops: StopRules  # why the run must stop
    strategist: Strategist  # revises the strategy before a proposal, when due
    workdirs: Workdirs  # the copies of the workspace trainings run in
    live: Live  # what the run is doing now
    fixed: dict[str, bytes | None]  # the run's program.md, which the strategist revises
    say: Callable[[str], None]
    promote_due: Callable[[History], None]  # promotes the best when [promote] every is due
