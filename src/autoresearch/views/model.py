"""The typed read model of one run: what `status --json` prints (as `asdict`), what the dashboard,
compare, report and the Python API (`autoresearch.open_run`) read. Built by `runs.read(store)`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Entry:
    """One iteration as a reader sees it: its numbers, never its prompt or raw output."""

    iteration: int
    status: str
    value: float | None
    values: list[float | None]  # each training run's value (noise and confirmation runs)
    seeds: list[int | None]
    metrics: dict[str, float]  # the task's other scores, the mean over the scored runs
    reason: str | None
    description: str
    explanation: str
    commit: str | None
    cost_usd: float | None
    tokens_in: int
    tokens_out: int
    agent_seconds: float
    train_seconds: float
    wall_seconds: float
    agent: str
    model: str
    strategy: int | None
    parent: int | None = None  # the iteration it was proposed from
    second_parent: int | None = None  # a merge's other parent ([search] combine_every)
    repairs: int = 0  # how many times the agent repaired its crash ([loop] repairs)
    peak_memory_mb: float | None = None


@dataclass
class StrategyEntry:
    version: int | None
    after_iteration: int
    trigger: str
    text: str
    reasoning: str
    reason: str | None
    agent: str
    model: str
    cost_usd: float | None
    tokens_in: int
    tokens_out: int
    seconds: float
    commit: str | None


@dataclass
class Metric:
    name: str
    direction: str
    source: str
    self_reported: bool


@dataclass
class Best:
    iteration: int | None
    value: float | None


@dataclass
class Noise:
    sigma: float | None
    runs: int


@dataclass
class Strategist:
    state: str  # on | off
    detail: str
    cost_usd: float | None
    strategies: list[StrategyEntry] = field(default_factory=list)


@dataclass
class RunView:
    run: str
    name: str | None  # given with run --name
    state: str
    stop_reason: str | None
    live: dict | None  # what a running loop is doing now
    iterations_planned: int
    eta_secs: float | None
    metric: Metric
    best: Best
    cost_usd: float | None
    noise: Noise
    keep_needs: dict | None  # what the next keep must beat (status_table's line)
    train_seconds: float
    repeat_seconds: float
    iterations: list[Entry]
    strategist: Strategist
    origin: dict | None = None  # the bundle this run's workspace was started from (init --from)
    verdicts: dict = field(default_factory=dict)  # verdicts.view(): promotions, ablation, flags
