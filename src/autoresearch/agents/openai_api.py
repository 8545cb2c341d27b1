"""The `openai` agent: OpenAI's chat completions, or any OpenAI-compatible server (vLLM, Ollama,
llama.cpp's server, OpenRouter, ...) at agent.base_url, through the official SDK."""

from __future__ import annotations

import os
from pathlib import Path

import openai

from autoresearch.agents.base import AgentError
from autoresearch.agents.llm import APIAgent, Message, Reply
from autoresearch.config import AgentConfig
from autoresearch.records import Usage

NO_KEY = "not-needed"  # local servers take any key
OPENAI_HOST = "api.openai.com"


class OpenAIAgent(APIAgent):
    name = "openai"
    default_model = "gpt-4o"
    key_env = "OPENAI_API_KEY"
    sdk = openai

    def __init__(self, cfg: AgentConfig, workspace: Path) -> None:
        super().__init__(cfg, workspace)
        key = os.environ.get(self.key_env)
        if not key and cfg.base_url is None:
            raise AgentError(
                f"{self.key_env} is not set: the openai agent needs an API key "
                "(or agent.base_url pointing at a local OpenAI-compatible server)"
            )
        self.client = openai.OpenAI(
            api_key=key or NO_KEY,
            base_url=cfg.base_url,
            max_retries=cfg.max_retries,
            timeout=cfg.request_timeout_secs,
        )
        # OpenAI's reasoning models refuse max_tokens; compatible servers all know max_tokens.
        official = self.client.base_url.host == OPENAI_HOST
        self.limit_param = "max_completion_tokens" if official else "max_tokens"

    def _send(self, messages: list[Message], max_tokens: int) -> Reply:
        options: dict = {self.limit_param: max_tokens}
        if self.cfg.temperature is not None:
            options["temperature"] = self.cfg.temperature
        response = self.client.chat.completions.create(
            model=self.model, messages=messages, **options
        )
        usage = response.usage
        tokens = Usage()
        if usage is not None:
            details = usage.prompt_tokens_details
            cached = (details.cached_tokens or 0) if details is not None else 0
            tokens = Usage(usage.prompt_tokens, usage.completion_tokens, cached)
        if not response.choices:
            return Reply("", tokens, "no choices", False)
        choice = response.choices[0]
        stop = str(choice.finish_reason)
        return Reply(choice.message.content or "", tokens, stop, stop == "length")
