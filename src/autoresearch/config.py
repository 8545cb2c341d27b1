"""autoresearch.toml: the run's settings, validated, with CLI overrides on top."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

CONFIG_NAME = "autoresearch.toml"


class ConfigError(Exception):
    """A one-line, user-facing problem with the configuration."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Price(_Section):
    """Dollars per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)  # cache reads; input's when unset
    cache_write: float | None = Field(default=None, ge=0)  # cache writes; input's when unset


class AgentConfig(_Section):
    name: str = "auto"  # auto | claude | codex | command | anthropic | openai | replay | hpo
    command: list[str] = []  # argv for the `command` agent; "{prompt_file}" is substituted
    # codex's own sandbox (`codex exec --sandbox`): "danger-full-access" runs it without one, for
    # containers that block the user namespaces its bubblewrap needs
    codex_sandbox: Literal["workspace-write", "danger-full-access"] = "workspace-write"
    model: str | None = None
    timeout_secs: float = Field(default=900, gt=0)  # one agent call, end to end
    base_url: str | None = None  # openai-compatible servers: vLLM, Ollama, llama.cpp, ...
    temperature: float | None = None
    max_tokens: int = Field(default=16000, gt=0)
    request_timeout_secs: float = Field(default=600, gt=0)
    max_retries: int = Field(default=4, ge=0)
    edit_format: Literal["whole", "search-replace"] = "whole"
    repair_rounds: int = Field(default=1, ge=0)
    prices: dict[str, Price] = {}  # overrides the shipped price table, keyed by model
    replay_dir: str | None = None  # the `replay` agent's folder of proposals
    seed: int = 0  # the `hpo` agent's sampler seed


class LoopConfig(_Section):
    iterations: int = Field(default=20, ge=0)  # iterations after the baseline
    max_cost_usd: float | None = Field(default=None, gt=0)
    context: Literal["full", "truncated"] = "full"
    recent_window: int = Field(default=10, ge=0)  # iterations shown with full explanations
    min_improvement: float = Field(default=0.0, ge=0)  # a keep must beat the best by more than this


class Config(_Section):
    metric: str = "val_accuracy"
    direction: Literal["maximize", "minimize"] = "maximize"
    budget_secs: float = Field(default=300, gt=0)
    grace_secs: float = Field(default=30, ge=0)
    python: str = "python3"
    data_dir: str | None = None
    max_log_bytes: int = Field(default=2_000_000, ge=10_000)
    loop: LoopConfig = LoopConfig()
    agent: AgentConfig = AgentConfig()

    def better(self, value: float, incumbent: float | None, margin: float = 0.0) -> bool:
        """Better than the incumbent by more than margin, in the configured direction."""
        if incumbent is None:
            return True
        if self.direction == "maximize":
            return value > incumbent + margin
        return value < incumbent - margin


def _line_of(text: str, key: str) -> str:
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"\s*{re.escape(key)}\s*=", line):
            return f", line {number}"
    return ""


def _section_model(path: tuple) -> type[BaseModel]:
    model: type[BaseModel] = Config
    for part in path:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            break
    return model


def _explain(err: ValidationError, source: str, text: str) -> str:
    first = err.errors()[0]
    loc = tuple(first["loc"])
    key = str(loc[-1]) if loc else ""
    where = f"{source}{_line_of(text, key)}"
    dotted = ".".join(str(p) for p in loc)
    if first["type"] == "extra_forbidden":
        valid = ", ".join(_section_model(loc[:-1]).model_fields)
        return f"{where}: unknown key '{dotted}'; valid keys here: {valid}"
    return f"{where}: {dotted}: {first['msg']}"


def parse(data: dict[str, Any], source: str = CONFIG_NAME, text: str = "") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_explain(err, source, text)) from None


def load(workspace: Path, overrides: dict[str, Any] | None = None) -> Config:
    """Read workspace/autoresearch.toml, then apply overrides ("loop.iterations": 5, ...)."""
    path = workspace / CONFIG_NAME
    if not workspace.is_dir():
        raise ConfigError(f"{workspace}: no such workspace (create one with `autoresearch init`)")
    if not path.is_file():
        raise ConfigError(f"{path}: not found (create a workspace with `autoresearch init`)")
    text = path.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return parse(data, str(path), text)
