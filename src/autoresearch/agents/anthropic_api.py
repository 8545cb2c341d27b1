"""The `anthropic` agent: Claude through the official SDK's Messages API."""

from __future__ import annotations

import os
from pathlib import Path

import anthropic

from autoresearch.agents.base import AgentError
from autoresearch.agents.llm import APIAgent, Reply, Turn, server_message
from autoresearch.core.config import AgentConfig
from autoresearch.core.records import Usage

TRUNCATED = ("max_tokens", "model_context_window_exceeded")
# Models that answer any sampling parameter with HTTP 400 "`temperature` is deprecated for this
# model." (Claude Opus 4.7 and later, Sonnet 5, Fable 5: Anthropic's migration guide, "sampling
# parameters removed"). Another model that says so is remembered the same way at its first 400.
NO_SAMPLING = (
    "claude-opus-4-7",
    "claude-opus-4-8",
    "claude-opus-5",
    "claude-sonnet-5",
    "claude-haiku-5",
    "claude-fable",
    "claude-mythos",
)


def cached_content(turn: Turn) -> str | list[dict]:
    """The turn's content, its stable prefix marked with cache_control (the prefix is cached
    for 5 minutes; later calls, repair rounds included, read it at the cache-hit price)."""
    if not turn.cached:
        return turn.text
    blocks: list[dict] = [
        {"type": "text", "text": turn.text[: turn.cached], "cache_control": {"type": "ephemeral"}}
    ]
    if turn.text[turn.cached :].strip():
        blocks.append({"type": "text", "text": turn.text[turn.cached :]})
    return blocks


class AnthropicAgent(APIAgent):
    name = "anthropic"
    default_model = "claude-sonnet-5-5"
    key_env = "ANTHROPIC_API_KEY"
    sdk = anthropic

    def __init__(self, cfg: AgentConfig, workspace: Path) -> None:
        super().__init__(cfg, workspace)
        key = os.environ.get(self.key_env)
        if not key:
            raise AgentError(f"{self.key_env} is not set: the anthropic agent needs an API key")
        # base_url None: the SDK reads ANTHROPIC_BASE_URL, else uses Anthropic's API.
        # max_retries 0: APIAgent retries itself, within agent.timeout_secs.
        self.client = anthropic.Anthropic(
            api_key=key, base_url=cfg.base_url, max_retries=0, timeout=cfg.request_timeout_secs
        )
        self.temperature = cfg.temperature
        if self.temperature is not None and self.model.startswith(NO_SAMPLING):
            self._drop_temperature(f"{self.model} accepts no sampling parameters")

    def _drop_temperature(self, why: str) -> None:
        self.temperature = None
        self.pending_notes.append(
            f"anthropic API: agent.temperature is not sent ({why}); remove it from the config"
        )

    def _send(self, turns: list[Turn], max_tokens: int, timeout: float) -> Reply:
        # This SDK has no temperature argument, so a configured one goes into the body as is.
        options = {} if self.temperature is None else {"temperature": self.temperature}
        messages = [{"role": turn.role, "content": cached_content(turn)} for turn in turns]
        try:
            response = self.client.messages.create(
                model=self.model,
                max_tokens=max_tokens,
                messages=messages,
                extra_body=options or None,
                timeout=timeout,
            )
        except anthropic.BadRequestError as err:
            message = server_message(err)
            if self.temperature is None or "temperature" not in message:
                raise
            self._drop_temperature(f"the API said: {message}")
            return self._send(turns, max_tokens, timeout)
        blocks = response.content or []
        text = "".join(block.text for block in blocks if block.type == "text")
        stop = str(response.stop_reason)
        tokens, written = Usage(), 0
        if response.usage is not None:
            usage = response.usage
            cached = usage.cache_read_input_tokens or 0
            written = usage.cache_creation_input_tokens or 0
            tokens = Usage(usage.input_tokens + cached + written, usage.output_tokens, cached)
        return Reply(text, tokens, stop, stop in TRUNCATED, written)
