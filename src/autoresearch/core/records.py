"""The record types shared across the orchestrator: one per concept."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

# Iteration statuses.
BASELINE, KEEP, DISCARD, CRASH, INVALID = "baseline", "keep", "discard", "crash", "invalid"
STATUSES = (BASELINE, KEEP, DISCARD, CRASH, INVALID)
# Run states. `stopped`: the run stopped itself early (a failed baseline, repeated failures, a dead
# agent); like `interrupted` (Ctrl-C, a signal, a killed orchestrator) it can be resumed.
RUNNING, FINISHED, INTERRUPTED, STOPPED = "running", "finished", "interrupted", "stopped"
# Where a run's metric comes from (config metric_source): prepare.score() of the predictions, in
# the orchestrator's process, or train.py's own log (self-reported).
PREDICTIONS, LOG = "predictions", "log"
METRIC_SOURCES = (PREDICTIONS, LOG)
SELF_REPORTED = "self-reported"
# What a running loop is doing now (the store's `live` entry, the terminal's and dashboard's phase).
PROPOSING, TRAINING, CONFIRMING, STRATEGIST = "proposing", "training", "confirming", "strategist"
PROMOTING = "promoting"  # the best and the baseline at a longer budget (promotion.py)
# Training run statuses (one run of train.py; CRASH as above).
OK, TIMEOUT = "ok", "timeout"
# What a crashed training run's crash was (TrainingRun.failure): train.py raised an exception
# (its process exited by itself with a non-zero code: the one crash the agent is asked to
# repair, loop/scheduler.py), it was killed by a signal, hit a resource limit (memory,
# processes, disk), filled the disk under its log, left nothing that could be scored, changed a
# fixed file (integrity), or lost its worker.
EXCEPTION, SIGNAL, LIMIT, FULL_DISK, UNSCORED, INTEGRITY, LOST = (
    "exception", "signal", "limit", "full disk", "unscored", "integrity", "lost",
)  # fmt: skip
# The name of the holdout score of a decision metric, where a task scores one (never decides).
HOLDOUT_PREFIX = "holdout_"
# Why a strategy version exists: the run's program.md, the strategist's schedule, a plateau.
PROGRAM, SCHEDULE, PLATEAU = "program.md", "schedule", "plateau"


@dataclass
class Usage:
    """Tokens and dollars spent by one or more agent calls. cost_usd None = unknown."""

    tokens_in: int = 0
    tokens_out: int = 0
    tokens_cached: int = 0
    cost_usd: float | None = 0.0

    def __add__(self, other: Usage) -> Usage:
        cost = (
            None
            if self.cost_usd is None or other.cost_usd is None
            else (self.cost_usd + other.cost_usd)
        )
        return Usage(
            self.tokens_in + other.tokens_in,
            self.tokens_out + other.tokens_out,
            self.tokens_cached + other.tokens_cached,
            cost,
        )


@dataclass
class TrainingRun:
    """One training of an iteration's train.py with one seed, scored by the orchestrator."""

    status: str  # ok | crash | timeout
    value: float | None  # the decision metric
    reason: str | None
    train_seconds: float
    wall_seconds: float
    peak_memory_mb: float | None
    log_path: Path | str | None
    seed: int | None = None  # AUTORESEARCH_SEED (None: a run recorded by a release without seeds)
    metrics: dict[str, float] = field(default_factory=dict)  # the task's other scores
    failure: str | None = None  # a crash's kind (EXCEPTION...); None: no crash, or not known


@dataclass
class Iteration:
    """One experiment of a run, as stored. Everything else (best, streaks, summaries) is derived."""

    iteration: int
    status: str
    value: float | None = None
    reason: str | None = None
    explanation: str = ""
    train_py: str = ""
    parent: int | None = None  # the iteration this one was proposed from (search.py)
    second_parent: int | None = None  # a combination's other parent: its change merged in
    repairs: int = 0  # the times the agent fixed its crash within the iteration
    diff: str = ""
    commit: str | None = None
    prompt: str = ""
    raw_output: str = ""
    usage: Usage = field(default_factory=Usage)
    agent_seconds: float = 0.0
    train_seconds: float = 0.0
    wall_seconds: float = 0.0
    peak_memory_mb: float | None = None
    log_path: str | None = None
    started_at: float = 0.0
    agent: str = ""  # the agent that proposed it, and its model ("" for the baseline / unknown)
    model: str = ""
    strategy: int | None = None  # the strategy version it ran under (None: no strategist)
    runs: list[TrainingRun] = field(default_factory=list)  # its trainings, in order

    @property
    def kept(self) -> bool:
        """Whether it is (or was) the incumbent's line: the baseline, or a keep."""
        return self.status in (BASELINE, KEEP)

    @property
    def metrics(self) -> dict[str, float]:
        """The mean of each other score over the runs that were scored."""
        scored = [r.metrics for r in self.runs if r.status == OK]
        names = dict.fromkeys(name for m in scored for name in m)
        return {name: mean(m[name] for m in scored if name in m) for name in names}

    @property
    def repeat_seconds(self) -> float:
        """Training time spent on runs after the first (noise and confirmation runs)."""
        return sum(r.train_seconds for r in self.runs[1:])

    @property
    def description(self) -> str:
        """The first non-empty line of the explanation, without markdown decoration."""
        for line in self.explanation.splitlines():
            line = line.strip().strip("#*_` ").strip()
            if line:
                return line
        return ""


@dataclass
class Strategy:
    """One strategy of a run: its initial one (from program.md), or one strategist call. A call
    whose reply was rejected has no version (reason says why): the previous strategy stayed."""

    after_iteration: int  # the last iteration recorded when it was written (-1: before any)
    trigger: str  # PROGRAM | SCHEDULE | PLATEAU
    version: int | None = None
    text: str = ""  # the body of program.md's `## Strategy` section
    reasoning: str = ""  # what the strategist said before the section
    reason: str | None = None  # why the reply was rejected
    reply: str = ""  # the strategist's whole reply
    prompt: str = ""
    usage: Usage = field(default_factory=Usage)
    agent: str = ""
    model: str = ""
    seconds: float = 0.0
    commit: str | None = None  # program.md with this strategy, on the run's `strategy` branch
    created_at: float = 0.0

    @property
    def description(self) -> str:
        """The first non-empty line of the strategy, without markdown decoration."""
        for line in self.text.splitlines():
            line = line.strip().strip("#*_`- ").strip()
            if line:
                return line
        return ""


@dataclass
class Promotion:
    """The best and the baseline trained again at budget_factor times the budget: does the keep
    hold there? gain is the best's mean over the baseline's, positive when better; holds: the
    loop's own test (decide.py) confirms it."""

    best_iteration: int
    budget_secs: float
    best_values: list[float | None]
    baseline_values: list[float | None]
    gain: float | None  # None: a side scored nothing
    holds: bool
    reason: str | None = None  # why it does not hold (decide's words, or a failed run)
    where: str = ""  # the GPU type it trained on where the cluster's nodes differ ("": the run's)
    after_iteration: int = 0  # the last iteration recorded when it ran
    seconds: float = 0.0  # the wall seconds of its runs, together (a worker's time)
    created_at: float = 0.0


@dataclass
class Ablated:
    """One kept change taken out of the final best, trained with the run's seeds: what it
    contributes (the best's mean minus this one's, positive when the change helps)."""

    best_iteration: int
    iteration: int  # the keep whose diff was reverted
    description: str
    applies: bool  # False: its diff no longer reverts cleanly from the best
    values: list[float | None]
    best_values: list[float | None]
    contribution: float | None
    spread: float | None  # the standard error of the contribution (None: one run a side)
    reason: str | None = None
    budget_secs: float = 0.0
    created_at: float = 0.0
