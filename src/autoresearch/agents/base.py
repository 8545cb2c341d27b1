"""The one interface every agent implements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from autoresearch.core.records import Iteration, Usage

# Turns a CLI agent's argv into a sandboxed one, given its scratch folder.
Wrap = Callable[[list[str], Path], list[str]]


class AgentError(Exception):
    """The agent cannot work at all (missing CLI, no key, dead server): one line for the user."""


@dataclass
class Request:
    """What an agent gets for one proposal."""

    iteration: int
    prompt: str  # the rendered prompt: program.md, incumbent train.py, history
    train_py: str  # the incumbent train.py
    workdir: Path  # experiment directory holding a copy of the incumbent; CLI agents edit here
    history: list[Iteration] = field(default_factory=list)  # every finished iteration, oldest first
    metric: str = "val_accuracy"
    direction: str = "maximize"
    secret: list[Path] = field(default_factory=list)  # what a CLI agent must not read (labels)
    wrap: Wrap | None = None  # None: no sandbox
    # The start of prompt that stays the same from one iteration to the next (role, program.md,
    # the incumbent train.py): API agents mark it for prompt caching. "" = no such split.
    stable_prompt: str = ""
    max_train_py_kb: int | None = None  # a larger train.py is invalid ([loop]); None: no limit
    # 0: a proposal; r: the r-th repair of iteration's train.py (given here), which crashed
    repair: int = 0


@dataclass
class Proposal:
    """An agent's answer. train_py None means the output was unusable (status `invalid`)."""

    train_py: str | None
    explanation: str = ""
    raw_output: str = ""
    invalid_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    reverted: list[str] = field(default_factory=list)  # files other than train.py it changed
    notes: list[str] = field(default_factory=list)  # one-line warnings for the user (each once)
    model: str = ""  # the model that answered, when the agent reports it (claude's JSON result)


@dataclass
class Answer:
    """A text-only reply (the strategist's). text None: the call failed, reason says why."""

    text: str | None
    usage: Usage = field(default_factory=Usage)
    reason: str | None = None


class AgentExhausted(AgentError):
    """The agent has nothing more to propose (a replay that has played every file)."""


class Agent(Protocol):
    name: str
    can_repair: bool  # whether it can fix a crash it is shown (Request.repair): an LLM can

    def propose(self, request: Request) -> Proposal:
        """One proposal. Failures of a single call become invalid proposals, not exceptions;
        AgentError is for an agent that cannot work at all."""
        ...

    def check(self) -> str:
        """Doctor's check: a tiny request that proves the agent answers. Returns one line;
        raises AgentError with one line on failure."""
        ...

    def unpriced(self) -> str | None:
        """Why this agent's spending would be unknown (so no cost limit can hold), or None."""
        ...


class TextAgent(Protocol):
    """An agent that can also answer a prompt in text, with no tools (the strategist)."""

    name: str
    model: str | None

    def complete(self, prompt: str) -> Answer:
        """One answer; a failed call is an Answer with a reason, AgentError as in propose."""
        ...

    def check(self) -> str: ...

    def unpriced(self) -> str | None: ...
