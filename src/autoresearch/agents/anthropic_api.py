"""The `anthropic` agent: Claude through the official SDK's Messages API."""

from __future__ import annotations

import os
from pathlib import Path

import anthropic

from autoresearch.agents.base import AgentError
from autoresearch.agents.llm import APIAgent, Message, Reply
from autoresearch.config import AgentConfig
from autoresearch.records import Usage

TRUNCATED = ("max_tokens", "model_context_window_exceeded")


class AnthropicAgent(APIAgent):
    name = "anthropic"
    default_model = "claude-sonnet-4-6"
    key_env = "ANTHROPIC_API_KEY"
    sdk = anthropic

    def __init__(self, cfg: AgentConfig, workspace: Path) -> None:
        super().__init__(cfg, workspace)
        key = os.environ.get(self.key_env)
        if not key:
            raise AgentError(f"{self.key_env} is not set: the anthropic agent needs an API key")
        # base_url None: the SDK reads ANTHROPIC_BASE_URL, else uses Anthropic's API.
        self.client = anthropic.Anthropic(
            api_key=key,
            base_url=cfg.base_url,
            max_retries=cfg.max_retries,
            timeout=cfg.request_timeout_secs,
        )

    def _send(self, messages: list[Message], max_tokens: int) -> Reply:
        # This SDK has no temperature argument (newer Claude models reject sampling settings),
        # so a configured temperature goes into the request body as is.
        options = {} if self.cfg.temperature is None else {"temperature": self.cfg.temperature}
        response = self.client.messages.create(
            model=self.model, max_tokens=max_tokens, messages=messages, extra_body=options or None
        )
        blocks = response.content or []
        text = "".join(block.text for block in blocks if block.type == "text")
        stop = str(response.stop_reason)
        tokens = Usage()
        if response.usage is not None:
            usage = response.usage
            cached = usage.cache_read_input_tokens or 0
            prompt = usage.input_tokens + cached + (usage.cache_creation_input_tokens or 0)
            tokens = Usage(prompt, usage.output_tokens, cached)
        return Reply(text, tokens, stop, stop in TRUNCATED)
