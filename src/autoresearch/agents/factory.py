"""Build the configured agent; `auto` picks the first that can work here and says why."""

from __future__ import annotations

import os
import shutil
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


def build(cfg: AgentConfig, workspace: Path) -> tuple[Agent, str | None]:
    """The agent, and for `auto` a one-line notice of which was picked and why."""
    name, notice = cfg.name, None
    if name == "auto":
        name, why = choose(cfg)
        notice = f"agent auto: using {name}, because {why}"
    if name in ("claude", "codex", "command"):
        from autoresearch.agents.command import CommandAgent

        return CommandAgent(cfg, workspace, preset=None if name == "command" else name), notice
    if name == "anthropic":
        from autoresearch.agents.anthropic_api import AnthropicAgent

        return AnthropicAgent(cfg, workspace), notice
    if name == "openai":
        from autoresearch.agents.openai_api import OpenAIAgent

        return OpenAIAgent(cfg, workspace), notice
    if name == "replay":
        from autoresearch.agents.replay import ReplayAgent

        return ReplayAgent(cfg, workspace), notice
    if name == "hpo":
        from autoresearch.agents.hpo import HpoAgent

        return HpoAgent(cfg, workspace), notice
    raise AgentError(f"unknown agent '{name}'; choose one of: {', '.join(AGENT_NAMES)}")


def check_cost_limit(agent: Agent, limit: float | None) -> None:
    """A cost limit needs the cost of every call: refuse to start where it would be unknown
    (instead of counting it as $0)."""
    why = agent.unpriced() if limit is not None else None
    if why:
        raise AgentError(f"--max-cost / loop.max_cost_usd ({limit:g}) cannot be enforced: {why}")
