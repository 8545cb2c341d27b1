"""The record types shared across the orchestrator: one per concept."""

from __future__ import annotations

from dataclasses import dataclass, field

# Iteration statuses.
BASELINE, KEEP, DISCARD, CRASH, INVALID = "baseline", "keep", "discard", "crash", "invalid"
STATUSES = (BASELINE, KEEP, DISCARD, CRASH, INVALID)
# Run states. `stopped`: the run stopped itself early (a failed baseline, repeated failures, a dead
# agent); like `interrupted` (Ctrl-C, a signal, a killed orchestrator) it can be resumed.
RUNNING, FINISHED, INTERRUPTED, STOPPED = "running", "finished", "interrupted", "stopped"
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
class Iteration:
    """One experiment of a run, as stored. Everything else (best, streaks, summaries) is derived."""

    iteration: int
    status: str
    value: float | None = None
    reason: str | None = None
    explanation: str = ""
    train_py: str = ""
    parent: int | None = None  # the incumbent iteration this one was proposed from
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
