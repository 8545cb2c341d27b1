"""autoresearch.toml: the run's settings, validated, with CLI overrides on top."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from autoresearch.core.config_errors import did_you_mean, explain, line_of
from autoresearch.core.flags import Flag, flagged
from autoresearch.core.records import LOG, METRIC_SOURCES, PREDICTIONS

CONFIG_NAME = "autoresearch.toml"


class ConfigError(Exception):
    """A one-line, user-facing problem with the configuration."""


DAY = 86_400
AGENT_NAMES = ("auto", "claude", "codex", "command", "anthropic", "openai", "replay", "hpo")


class _Section(BaseModel):
    # strict: `iterations = "3"` is refused, not read as 3; no inf or nan anywhere.
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, strict=True, allow_inf_nan=False
    )


class Price(_Section):
    """Dollars per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)  # cache reads; input's when unset
    cache_write: float | None = Field(default=None, ge=0)  # cache writes; input's when unset


class AgentConfig(_Section):
    name: Annotated[
        str, Flag("--agent", f"{', '.join(AGENT_NAMES[:-1])} or {AGENT_NAMES[-1]}.")
    ] = "auto"  # one of AGENT_NAMES
    command: list[str] = []  # argv for the `command` agent; "{prompt_file}" is substituted
    # codex's own sandbox (`codex exec --sandbox`): "danger-full-access" runs it without one, for
    # containers that block the user namespaces its bubblewrap needs
    codex_sandbox: Literal["workspace-write", "danger-full-access"] = "workspace-write"
    # A CLI agent where autoresearch's sandbox is off reads every file the user can (labels
    # included): it runs only with this set (agent_sandbox.py)
    unsandboxed_ok: bool = False
    model: Annotated[str | None, Flag("--model", "The agent's model.")] = None
    timeout_secs: float = Field(default=900, gt=0, le=DAY)  # one agent call, end to end
    base_url: str | None = None  # openai-compatible servers: vLLM, Ollama, llama.cpp, ...
    temperature: float | None = None
    max_tokens: int = Field(default=16000, gt=0, le=10_000_000)
    request_timeout_secs: float = Field(default=600, gt=0, le=DAY)
    max_retries: int = Field(default=4, ge=0, le=100)
    edit_format: Literal["whole", "search-replace"] = "whole"
    repair_rounds: int = Field(default=1, ge=0, le=100)
    prices: dict[str, Price] = {}  # overrides the shipped price table, keyed by model
    # the `replay` agent's folder of proposals
    replay_dir: Annotated[
        str | None, Flag("--replay-dir", "The replay agent's folder.", path="path")
    ] = None
    seed: int = 0  # the `hpo` agent's sampler seed
    # The prompt carries a TPE study of every iteration's hyperparameter block (hpo_hints.py)
    hpo_hints: bool = False

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in AGENT_NAMES:
            raise ValueError(
                f"unknown agent '{name}'{did_you_mean(name, AGENT_NAMES)}; choose one of: "
                + ", ".join(AGENT_NAMES)
            )
        return name


class LoopConfig(_Section):
    # iterations after the baseline
    iterations: Annotated[
        int, Flag("--iterations", "Iterations after the baseline.", mutable=True)
    ] = Field(default=20, ge=0, le=1_000_000)
    max_cost_usd: Annotated[
        float | None, Flag("--max-cost", "Stop at this many $.", mutable=True)
    ] = Field(default=None, gt=0, le=1_000_000)
    context: Annotated[
        Literal["full", "truncated"], Flag("--context", "Prompt history: full or truncated.")
    ] = "full"
    recent_window: int = Field(default=10, ge=0)  # iterations shown with full explanations
    # The rendered prompt's size at most, in tokens (context.py; estimated on the high side).
    context_tokens: Annotated[
        int, Flag("--context-tokens", "The prompt's size at most.", mutable=True)
    ] = Field(default=16_000, ge=1000, le=10_000_000)
    # A proposal's train.py at most, in KB of 1024 bytes: a larger one is `invalid`, a larger
    # baseline refused at the start. Beyond it, a proposal must leave room in context_tokens.
    max_train_py_kb: int = Field(default=64, ge=1, le=100_000)
    min_improvement: float = Field(default=0.0, ge=0)  # a keep must beat the best by more than this
    # The baseline is trained this many times with different seeds: the noise floor.
    noise_runs: Annotated[int, Flag("--noise-runs", "Baseline trainings: the noise floor.")] = (
        Field(default=3, ge=1, le=100)
    )
    # A candidate whose first run would be kept is trained this many more times (0: kept on one).
    confirm_runs: Annotated[
        int, Flag("--confirm-runs", "Reruns of a candidate before a keep (0: none).")
    ] = Field(default=2, ge=0, le=100)
    # A proposal whose first run crashes with an exception (not a timeout, a limit or a signal)
    # is given back to the agent to fix this many times within its iteration, each fix trained
    # again (0: never; the baseline and the hpo agent's proposals never are).
    repairs: int = Field(default=1, ge=0, le=100)
    # Stop after this many invalid or crash iterations in a row failing the same way (0: never).
    max_consecutive_failures: int = Field(default=5, ge=0, le=1_000_000)
    # End the run after this many iterations without a keep since the last strategy change (0: off).
    stop_after: int = Field(default=0, ge=0, le=1_000_000)
    # End the run once the confirmed best reaches this value of the metric (unset: never).
    target: float | None = None
    # No new proposal after this local time, "HH:MM" (the next one after the run starts or
    # resumes); what is training then finishes within its budget.
    until: Annotated[
        str | None, Flag("--until", "No new proposal after this time of day (HH:MM).", mutable=True)
    ] = None

    @field_validator("until")
    @classmethod
    def _time_of_day(cls, until: str | None) -> str | None:
        if until is not None and not re.fullmatch(r"([01]?[0-9]|2[0-3]):[0-5][0-9]", until):
            raise ValueError(f"'{until}' is not a time of day HH:MM (e.g. 07:30)")
        return until


# The agents that can strategise: those with an LLM that answers in text.
STRATEGIST_AGENTS = ("claude", "anthropic", "openai")


class StrategistConfig(_Section):
    """The outer loop: who rewrites program.md's `## Strategy` section, and when."""

    # unset: the run's own agent when it is one of STRATEGIST_AGENTS; "none": off
    agent: Literal["claude", "anthropic", "openai", "none"] | None = None
    model: str | None = None  # unset: the run's model (same agent), else that agent's default
    base_url: str | None = None  # unset: agent.base_url where it is the run's agent
    every: int = Field(default=5, ge=0, le=1_000_000)  # after every N iterations (0: never)
    plateau: int = Field(default=4, ge=0, le=1_000_000)  # after N without a keep (0: never)


class SearchConfig(_Section):
    """Which recorded iteration each proposal starts from (search.py)."""

    # greedy: the best; tree: a candidate being confirmed, else the best, its near misses or
    # another kept line, by UCB (the default: benchmarks/search_policy.py has tree level with
    # greedy at 1 worker and ahead at 4 and 16)
    policy: Literal["greedy", "tree"] = "tree"
    # tree: every Nth proposal merges two lines' changes, when two are worth merging (0: never)
    combine_every: int = Field(default=4, ge=0, le=1_000_000)
    explore: float = Field(default=1.0, ge=0, le=100)  # tree: UCB's exploration weight


class RunConfig(_Section):
    """Who trains what, when: one trainer in step with the agent, or several on Ray."""

    # experiments training at once (2+: Ray)
    workers: Annotated[
        int, Flag("--workers", "Experiments training at once (2+: on Ray).", mutable=True)
    ] = Field(default=1, ge=1, le=10_000)
    # The agent proposes while experiments train (on when workers > 1; with 1, opt in).
    asynchronous: Annotated[
        bool, Flag("--async", "The agent proposes while experiments train.", mutable=True)
    ] = False
    # An existing Ray cluster ("auto", "ray://host:10001", "host:6379"); unset: RAY_ADDRESS, else
    # a local one started by the run (only when workers > 1 or asynchronous needs Ray).
    ray_address: Annotated[
        str | None, Flag("--ray-address", "An existing Ray cluster to train on.", mutable=True)
    ] = None

    @property
    def parallel(self) -> bool:
        """Training runs in the background while the agent proposes."""
        return self.workers > 1 or self.asynchronous or self.ray_address is not None


class Resources(_Section):
    """What each experiment asks of its node (on Ray), how many threads it may use and how
    much it may write."""

    cpus: float = Field(default=1, gt=0, le=10_000)
    gpus: float = Field(default=0, ge=0, le=1_000)
    # OMP/MKL/OpenBLAS/torch thread counts; unset: cpus (rounded up) on Ray, train.py's own default
    # otherwise
    threads: int | None = Field(default=None, ge=1, le=10_000)
    # MB train.py may write in its experiment folder (no file larger either); 0: no limit
    disk_mb: int = Field(default=10_240, ge=0, le=2**30)
    # What an hour of one worker's machine or GPU costs: counted for every hour a worker trains,
    # in cost_usd and --max-cost (0: not counted)
    usd_per_hour: float = Field(default=0, ge=0, le=1_000_000)


class PromoteConfig(_Section):
    """Whether a run's verdict transfers to a longer budget (promotion.py)."""

    # Train the best and the baseline at this many times the budget at the end (unset: off).
    budget_factor: float | None = Field(default=None, gt=1, le=1000)
    every: int = Field(default=0, ge=0, le=1_000_000)  # and after every N keeps (0: at the end)


class TrackingConfig(_Section):
    """Where training runs are logged besides the store (pip install 'autoresearch[mlflow]')."""

    # An MLflow tracking URI: a folder (file store), sqlite:///path.db or http://host:5000
    mlflow: str | None = None
    experiment: str = "autoresearch"  # the MLflow experiment the runs are logged under


class Config(_Section):
    metric: str = "val_accuracy"
    direction: Literal["maximize", "minimize"] = "maximize"
    # Where the metric comes from: prepare.score() of the saved predictions, in our own process
    # (trusted), or the last line of train.py's log that [metrics] matches (self-reported).
    metric_source: Literal[METRIC_SOURCES] = PREDICTIONS
    metrics: dict[str, str] = {}  # name -> regular expression; group 1 is the value
    memory_metric: str | None = None  # the [metrics] entry with peak memory in MB (results.tsv)
    command: list[str] = []  # the training command; [] runs [python, "train.py"]
    readonly_paths: list[str] = []  # folders train.py may read (a sandbox shows them read-only)
    budget_secs: Annotated[float, Flag("--budget", "Training budget in seconds.")] = Field(
        default=300, gt=0, le=7 * DAY
    )
    grace_secs: Annotated[float, Flag("--grace", "Seconds after the budget before SIGKILL.")] = (
        Field(default=30, ge=0, le=DAY)
    )
    python: Annotated[
        str, Flag("--python", "The training interpreter.", show_default=False, path="program")
    ] = "python3"
    data_dir: Annotated[
        str | None, Flag("--data-dir", "Folder with the dataset files.", path="path")
    ] = None
    max_log_bytes: int = Field(default=2_000_000, ge=10_000, le=2**40)
    # bubblewrap around train.py and CLI agents
    sandbox: Annotated[
        Literal["auto", "bwrap", "none"],
        Flag("--sandbox", "auto, bwrap or none (bubblewrap around train.py)."),
    ] = "auto"
    env_passthrough: list[str] = []  # variables train.py gets besides the allowlisted ones
    max_memory_mb: int | None = Field(default=None, ge=0)  # unset: 75% of the machine; 0: none
    max_processes: int = Field(default=1024, ge=0)  # processes and threads of the tree; 0: none
    # Score a hidden holdout beside the decision metric where the task has one (never shown to
    # the agent, never decides); false: decisions on every label (Fashion-MNIST: all 10,000).
    holdout: bool = True
    loop: LoopConfig = LoopConfig()
    agent: AgentConfig = AgentConfig()
    strategist: StrategistConfig = StrategistConfig()
    search: SearchConfig = SearchConfig()
    run: RunConfig = RunConfig()
    resources: Resources = Resources()
    promote: PromoteConfig = PromoteConfig()
    tracking: TrackingConfig = TrackingConfig()

    @field_validator("metrics")
    @classmethod
    def _patterns(cls, metrics: dict[str, str]) -> dict[str, str]:
        for name, pattern in metrics.items():
            try:
                groups = re.compile(pattern).groups
            except re.error as err:
                raise ValueError(f"{name}: not a regular expression ({err})") from None
            if groups < 1:
                raise ValueError(
                    f"{name}: the pattern needs a group around the value, e.g. ([0-9.]+)"
                )
        return metrics

    @field_validator("command")
    @classmethod
    def _argv(cls, command: list[str]) -> list[str]:
        if command and not command[0].strip():
            raise ValueError("the program (its first word) is empty")
        return command

    @model_validator(mode="after")
    def _log_metric(self) -> Config:
        if self.metric_source == LOG and self.metric not in self.metrics:
            raise ValueError(
                f'metric_source = "log" needs a pattern for the metric: [metrics] {self.metric} = '
                f"'^{self.metric}:\\s*([-+0-9.eE]+)'"
            )
        if self.memory_metric is not None and self.memory_metric not in self.metrics:
            raise ValueError(f"memory_metric '{self.memory_metric}' is not in [metrics]")
        return self

    def better(self, value: float, incumbent: float | None, margin: float = 0.0) -> bool:
        """Better than the incumbent by more than margin, in the configured direction."""
        if incumbent is None:
            return True
        if self.direction == "maximize":
            return value > incumbent + margin
        return value < incumbent - margin


# Everything a flag sets, and how: derived from the fields' flags above.
FLAGGED = {f.key: f for f in flagged(Config)}  # "loop.iterations": its Flagged
FLAGS = {key: f.flag.name for key, f in FLAGGED.items()}  # "loop.iterations": "--iterations"
MUTABLE = tuple(key for key, f in FLAGGED.items() if f.flag.mutable)  # a resume may change them


def parse(data: dict[str, Any], source: str = CONFIG_NAME, text: str = "") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        loc = tuple(err.errors()[0]["loc"])
        raise ConfigError(explain(err, f"{source}{line_of(text, loc)}", Config)) from None


def with_flags(cfg: Config, flags: dict[str, Any]) -> Config:
    """cfg with flag values ("loop.iterations": 5, ...; None = not given) on top; an error names
    the flag."""
    data = cfg.model_dump()
    for dotted, value in flags.items():
        if value is None:
            continue
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[last] = value
        try:
            Config.model_validate(data)
        except ValidationError as err:
            shown = f"{value:g}" if isinstance(value, float) else value
            raise ConfigError(
                explain(err, f"{FLAGS.get(dotted, dotted)} {shown}", Config)
            ) from None
    return Config.model_validate(data)


def read(workspace: Path) -> Config:
    """workspace/autoresearch.toml alone; an error names the file and line."""
    path = workspace / CONFIG_NAME
    if not workspace.is_dir():
        raise ConfigError(f"{workspace}: no such workspace (create one with `autoresearch init`)")
    if not path.is_file():
        raise ConfigError(f"{path}: not found (create a workspace with `autoresearch init`)")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}, line {line}: not UTF-8 text (byte {raw[err.start]:#04x}); "
            "save the file as UTF-8"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None
    return parse(data, str(path), text)


def load(workspace: Path, overrides: dict[str, Any] | None = None) -> Config:
    """Read workspace/autoresearch.toml, then apply flags ("loop.iterations": 5, ...)."""
    return with_flags(read(workspace), overrides or {})
