"""The proposal loop shared by the API agents: ask, parse, validate, send the error back, repeat."""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

from autoresearch.agents import pricing
from autoresearch.agents.base import AgentError, Proposal, Request
from autoresearch.agents.edits import Edit, EditError, apply_edit, validate
from autoresearch.config import AgentConfig
from autoresearch.records import Usage

TEMPLATES = {"whole": "edit_whole.txt", "search-replace": "edit_search_replace.txt"}
REPAIR = "{problem}\n\nReply again with your complete answer, in the format asked for above."
REJECTED = "\n\n----- autoresearch: reply {number} rejected: {problem} -----\n\n"
CHECK_PROMPT, CHECK_MAX_TOKENS = "Reply with OK", 16
RETRIED_CLIENT_ERRORS = (408, 409, 429)  # the 4xx statuses the SDKs retry: transient
FATAL_LABELS = {401: "authentication failed", 403: "permission denied", 404: "not found"}

Message = dict[str, str]


@dataclass
class Reply:
    text: str
    tokens: Usage  # tokens only; the loop prices them
    stop_reason: str
    truncated: bool  # the model stopped at max_tokens


class CallFailed(Exception):
    """A request failed for good after the SDK's own retries: this proposal is lost, not the run."""


def edit_instructions(edit_format: str) -> str:
    return resources.files("autoresearch").joinpath("prompts", TEMPLATES[edit_format]).read_text()


def one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def first_line(text: str) -> str:
    return one_line(text.strip().splitlines()[0]) if text.strip() else ""


def _server_message(err: Any) -> str:
    """The server's own words from an SDK status error (the body's error message if it has one)."""
    body = err.body
    if isinstance(body, dict):
        nested = body.get("error")
        if isinstance(nested, dict):
            nested = nested.get("message")
        body = body.get("message") or nested
    return str(body) if body else err.message


class APIAgent:
    """Base of the API agents. A subclass sets the class attributes, makes self.client in its
    constructor (after super().__init__), and implements _send for its SDK."""

    name = ""
    default_model = ""
    key_env = ""  # the environment variable that holds the API key
    sdk: ModuleType  # the SDK module; both official SDKs share their exception names
    client: Any

    def __init__(self, cfg: AgentConfig, workspace: Path) -> None:
        self.cfg = cfg
        self.workspace = workspace
        self.model = cfg.model or self.default_model

    def _send(self, messages: list[Message], max_tokens: int) -> Reply:
        """One request through the SDK (which retries transient failures itself)."""
        raise NotImplementedError

    # --- the agent interface ---

    def propose(self, request: Request) -> Proposal:
        prompt = f"{request.prompt.rstrip()}\n\n{edit_instructions(self.cfg.edit_format)}"
        messages: list[Message] = [{"role": "user", "content": prompt}]
        usage, transcript, problem = Usage(), [], ""
        deadline = time.monotonic() + self.cfg.timeout_secs
        replies = self.cfg.repair_rounds + 1
        for number in range(1, replies + 1):
            if number > 1 and time.monotonic() > deadline:
                limit = f"agent.timeout_secs ({self.cfg.timeout_secs:g}s) ran out"
                return self._invalid(f"{limit}: {first_line(problem)}", transcript, usage)
            try:
                reply = self._call(messages, self.cfg.max_tokens)
            except CallFailed as err:
                return self._invalid(str(err), transcript, usage)
            usage += self._priced(reply.tokens)
            transcript.append(reply.text)
            try:
                edit = self._accept(reply, request.train_py)
            except EditError as err:
                problem = str(err)
                transcript.append(REJECTED.format(number=number, problem=first_line(problem)))
                messages.append({"role": "assistant", "content": reply.text or "(empty reply)"})
                messages.append({"role": "user", "content": REPAIR.format(problem=problem)})
                continue
            return Proposal(
                train_py=edit.train_py,
                explanation=edit.explanation,
                raw_output="".join(transcript),
                usage=usage,
            )
        counted = f"{replies} replies" if replies > 1 else "1 reply"
        reason = f"no usable edit in {counted}: {first_line(problem)}"
        return self._invalid(reason, transcript, usage)

    def check(self) -> str:
        started = time.monotonic()
        try:
            self._call([{"role": "user", "content": CHECK_PROMPT}], CHECK_MAX_TOKENS)
        except CallFailed as err:
            raise AgentError(str(err)) from None
        line = f"{self.name} {self.model} answered in {time.monotonic() - started:.1f}s"
        if pricing.lookup(self.model, self.cfg.prices) is None:
            line += "; its price is unknown, so its cost is not tracked (see agent.prices)"
        return line

    # --- helpers ---

    def _call(self, messages: list[Message], max_tokens: int) -> Reply:
        try:
            return self._send(messages, max_tokens)
        except self.sdk.APIError as err:
            raise self._failure(err) from None

    def _accept(self, reply: Reply, train_py: str) -> Edit:
        if reply.truncated:
            raise EditError(
                f"your reply was cut off at the output limit ({self.cfg.max_tokens} tokens) "
                "before it was complete; answer again more briefly, with a short explanation"
            )
        if not reply.text.strip():
            raise EditError(f"your reply was empty (stop reason: {reply.stop_reason})")
        edit = apply_edit(self.cfg.edit_format, reply.text, train_py)
        validate(edit.train_py, train_py)
        return edit

    def _priced(self, tokens: Usage) -> Usage:
        dollars = pricing.cost(self.model, tokens, self.cfg.prices)
        return Usage(tokens.tokens_in, tokens.tokens_out, tokens.tokens_cached, dollars)

    def _invalid(self, reason: str, transcript: list[str], usage: Usage) -> Proposal:
        return Proposal(
            train_py=None, invalid_reason=reason, raw_output="".join(transcript), usage=usage
        )

    def _clean(self, text: str) -> str:
        """One line, with the API key blanked out should a server ever echo it."""
        key = getattr(self.client, "api_key", None)
        if isinstance(key, str) and len(key) >= 8:
            text = text.replace(key, "[redacted]")
        return one_line(text)

    def _failure(self, err: Exception) -> Exception:
        """An SDK error, after the SDK's retries, as AgentError (the run cannot go on: bad key,
        no such model, a request the server will never accept) or CallFailed (this proposal)."""
        who = f"{self.name} API"
        tries = f"gave up after {self.cfg.max_retries + 1} attempt(s)"
        if isinstance(err, self.sdk.APITimeoutError):
            return CallFailed(
                f"{who}: no answer within {self.cfg.request_timeout_secs:g}s ({tries})"
            )
        if isinstance(err, self.sdk.APIConnectionError):
            cause = err.__cause__ or err
            detail = self._clean(str(cause)) or type(cause).__name__
            return CallFailed(f"{who}: connection failed: {detail} ({tries})")
        if isinstance(err, self.sdk.APIStatusError):
            status, message = err.status_code, self._clean(_server_message(err))
            if 400 <= status < 500 and status not in RETRIED_CLIENT_ERRORS:
                label = FATAL_LABELS.get(status, "request rejected")
                hint = {
                    401: f"; check {self.key_env}",
                    404: f"; check agent.model ({self.model}) and agent.base_url",
                }.get(status, "")
                return AgentError(f"{who}: {label} (HTTP {status}: {message}){hint}")
            return CallFailed(f"{who}: HTTP {status}: {message} ({tries})")
        return CallFailed(f"{who}: {self._clean(str(err)) or type(err).__name__}")
