"""Build the configured agent; `auto` picks the first that can work here and says why."""

from __future__ import annotations

import os
import shutil
from importlib import import_module
from pathlib import Path

from autoresearch.agents.base import Agent, AgentError
from autoresearch.core.config import AGENT_NAMES, AgentConfig


def choose(cfg: AgentConfig) -> tuple[str, str]:
    """(agent name, why) for `auto`."""
    if shutil.which("claude"):
        return "claude", "the claude CLI is on PATH"
    if os.environ.get("ANTHROPIC_API_KEY"):
        return "anthropic", "ANTHROPIC_API_KEY is set"
    if os.environ.get("OPENAI_API_KEY"):
        return "openai", "OPENAI_API_KEY is set"
    if cfg.base_url:
        return "openai", f"agent.base_url is set ({cfg.base_url})"
    return "hpo", "no LLM is configured (no claude CLI, no API key, no base_url)"


# Every agent but `auto`, by its name in config.AGENT_NAMES (the one list of names, which the
# configuration checks and --agent's help shows): the module and the class that build it,
# imported only when chosen (an SDK is loaded only for its own agent).
AGENTS = {
    "claude": ("command", "CommandAgent"),
    "codex": ("command", "CommandAgent"),
    "command": ("command", "CommandAgent"),
    "anthropic": ("anthropic_api", "AnthropicAgent"),
    "openai": ("openai_api", "OpenAIAgent"),
    "replay": ("replay", "ReplayAgent"),
    "hpo": ("hpo", "HpoAgent"),
}


def build(cfg: AgentConfig, workspace: Path) -> tuple[Agent, str | None]:
    """The agent, and for `auto` a one-line notice of which was picked and why."""
    name, notice = cfg.name, None
    if name == "auto":
        name, why = choose(cfg)
        notice = f"agent auto: using {name}, because {why}"
    if name not in AGENTS:
        raise AgentError(f"unknown agent '{name}'; choose one of: {', '.join(AGENT_NAMES)}")
    module, cls = AGENTS[name]
    agent = getattr(import_module(f"autoresearch.agents.{module}"), cls)
    if module == "command":
        return agent(cfg, workspace, preset=None if name == "command" else name), notice
    return agent(cfg, workspace), notice


def check_cost_limit(agent: Agent, limit: float | None) -> None:
    """A cost limit needs the cost of every call: refuse to start where it would be unknown
    (instead of counting it as $0)."""
    why = agent.unpriced() if limit is not None else None
    if why:
        raise AgentError(f"--max-cost / loop.max_cost_usd ({limit:g}) cannot be enforced: {why}")
