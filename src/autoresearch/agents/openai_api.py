"""The `openai` agent: OpenAI's chat completions, or any OpenAI-compatible server (vLLM, Ollama,
llama.cpp's server, OpenRouter, Azure, ...) at agent.base_url, through the official SDK."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import openai

from autoresearch.agents.base import AgentError
from autoresearch.agents.llm import APIAgent, Reply, Turn, server_message
from autoresearch.core.config import AgentConfig
from autoresearch.core.records import Usage

NO_KEY = "not-needed"  # local servers take any key
OPENAI_HOST = "api.openai.com"
LIMIT_PARAMS = ("max_tokens", "max_completion_tokens")


class OpenAIAgent(APIAgent):
    name = "openai"
    default_model = "gpt-6.1-terra"
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
        # max_retries 0: APIAgent retries itself, within agent.timeout_secs.
        self.client = openai.OpenAI(
            api_key=key or NO_KEY,
            base_url=cfg.base_url,
            max_retries=0,
            timeout=cfg.request_timeout_secs,
        )
        # OpenAI's reasoning models refuse max_tokens; most compatible servers know only
        # max_tokens. Azure's reasoning deployments refuse it too ("Unsupported parameter:
        # 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."),
        # older Azure API versions refuse max_completion_tokens: on such a 400 the other name is
        # tried once and kept.
        self.official = self.client.base_url.host == OPENAI_HOST
        self.limit_param = LIMIT_PARAMS[1] if self.official else LIMIT_PARAMS[0]
        self.limit_switched = False
        self.probes_context = not self.official

    def _send(self, turns: list[Turn], max_tokens: int, timeout: float) -> Reply:
        options: dict = {self.limit_param: max_tokens}
        if self.cfg.temperature is not None:
            options["temperature"] = self.cfg.temperature
        if self.official and turns[0].cached:
            # OpenAI caches prompt prefixes itself; the key routes calls that share the prefix
            # to the same cache (https://platform.openai.com/docs/guides/prompt-caching).
            prefix = turns[0].text[: turns[0].cached].encode()
            options["prompt_cache_key"] = "autoresearch-" + hashlib.sha256(prefix).hexdigest()[:16]
        messages = [{"role": turn.role, "content": turn.text} for turn in turns]
        try:
            response = self.client.chat.completions.create(
                model=self.model, messages=messages, timeout=timeout, **options
            )
        except openai.BadRequestError as err:
            if self.limit_switched or not self._limit_rejected(err):
                raise
            rejected, self.limit_param = self.limit_param, self._other_limit()
            self.limit_switched = True
            self.pending_notes.append(
                f"openai API: the server refused `{rejected}`; using `{self.limit_param}`"
            )
            return self._send(turns, max_tokens, timeout)
        usage = response.usage
        tokens, written = Usage(), 0
        if usage is not None:
            details = usage.prompt_tokens_details
            cached = (details.cached_tokens or 0) if details is not None else 0
            # GPT-5.6 and later bill cache writes; the usage names them cache_write_tokens
            written = (getattr(details, "cache_write_tokens", None) or 0) if details else 0
            tokens = Usage(usage.prompt_tokens, usage.completion_tokens, cached)
        if not response.choices:
            return Reply("", tokens, "no choices", False, written)
        choice = response.choices[0]
        stop = str(choice.finish_reason)
        return Reply(choice.message.content or "", tokens, stop, stop == "length", written)

    def _other_limit(self) -> str:
        return LIMIT_PARAMS[1 - LIMIT_PARAMS.index(self.limit_param)]

    def _limit_rejected(self, err: openai.BadRequestError) -> bool:
        """The 400 is about the output-limit parameter's name (its `param`, or its message
        naming the one sent, e.g. "Unrecognized request argument supplied: max_completion_tokens"
        or "... Use 'max_completion_tokens' instead")."""
        body = err.body if isinstance(err.body, dict) else {}
        error = body.get("error") if isinstance(body.get("error"), dict) else body
        message = server_message(err)
        return (
            error.get("param") == self.limit_param
            or self._other_limit() in message
            or ("nrecognized" in message and self.limit_param in message)
        )
