"""The proposal loop shared by the API agents: ask, parse, validate, send the error back, repeat."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

from autoresearch.agents import pricing
from autoresearch.agents.base import AgentError, Answer, Proposal, Request
from autoresearch.agents.edits import Edit, EditError, apply_edit
from autoresearch.agents.validate import code_problem
from autoresearch.core.config import AgentConfig
from autoresearch.core.records import Usage

TEMPLATES = {"whole": "edit_whole.txt", "search-replace": "edit_search_replace.txt"}
REPAIR = "{problem}\n\nReply again with your complete answer, in the format asked for above."
REJECTED = "\n\n----- autoresearch: reply {number} rejected: {problem} -----\n\n"
CHECK_PROMPT, CHECK_MAX_TOKENS = "Reply with OK", 16
RETRIED_CLIENT_ERRORS = (408, 409, 429)  # the 4xx statuses worth retrying: transient
FATAL_LABELS = {401: "authentication failed", 403: "permission denied", 404: "not found"}
MAX_BACKOFF_SECS, MAX_RETRY_AFTER_SECS = 8.0, 60.0
# A prompt of C characters is at least C/6 tokens (English prose runs ~4.5 characters a token,
# code ~3): a server that counts fewer cut the prompt to its context length (Ollama does so
# silently at its default context, see docs/agents.md).
CHARS_PER_TOKEN_AT_MOST = 6
CUT_HINT = "raise the server's context length (Ollama: OLLAMA_CONTEXT_LENGTH=32768 ollama serve)"
# doctor's probe: ~24,000 characters of code, well over 4,096 tokens (Ollama's default context)
PROBE_LINES = 1000


@dataclass
class Turn:
    """One message of the conversation. Its first `cached` characters are a prefix that repeats
    across calls (program.md, instructions, the incumbent): providers are asked to cache it."""

    role: str  # user | assistant
    text: str
    cached: int = 0


@dataclass
class Reply:
    text: str
    tokens: Usage  # tokens only; the loop prices them
    stop_reason: str
    truncated: bool  # the model stopped at max_tokens
    cache_writes: int = 0  # prompt tokens written to the provider's cache (billed differently)


class CallFailed(Exception):
    """A request failed for good after its retries: this proposal is lost, not the run."""


def edit_instructions(edit_format: str) -> str:
    return resources.files("autoresearch").joinpath("prompts", TEMPLATES[edit_format]).read_text()


def start_of(text: str, limit: int = 300) -> str:
    """The start of text on one line (its whitespace collapsed), cut to limit characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def first_line(text: str) -> str:
    return start_of(text.strip().splitlines()[0]) if text.strip() else ""


def server_message(err: Any) -> str:
    """The server's own words from an SDK status error (the body's error message if it has one)."""
    body = err.body
    if isinstance(body, dict):
        nested = body.get("error")
        if isinstance(nested, dict):
            nested = nested.get("message")
        body = body.get("message") or nested
    return str(body) if body else err.message


def first_turn(request: Request, instructions: str) -> Turn:
    """The prompt with the edit instructions after its stable part, so that all of it is one
    cacheable prefix; without a stable part, the instructions go last."""
    stable = request.stable_prompt
    if not stable or not request.prompt.startswith(stable):
        return Turn("user", f"{request.prompt.rstrip()}\n\n{instructions}")
    head = f"{stable.rstrip()}\n\n{instructions.rstrip()}\n\n"
    return Turn("user", head + request.prompt[len(stable) :].strip() + "\n", cached=len(head))


def probe_prompt() -> str:
    lines = [f"value_{i} = {i} * {i + 7}  # filler" for i in range(PROBE_LINES)]
    return "\n".join([*lines, "", CHECK_PROMPT])


class APIAgent:
    """Base of the API agents. A subclass sets the class attributes, makes self.client in its
    constructor (after super().__init__), and implements _send for its SDK."""

    name = ""
    can_repair = True
    default_model = ""
    key_env = ""  # the environment variable that holds the API key
    sdk: ModuleType  # the SDK module; both official SDKs share their exception names
    client: Any
    probes_context = False  # doctor checks that a long prompt arrives whole (local servers)

    def __init__(self, cfg: AgentConfig, workspace: Path) -> None:
        self.cfg = cfg
        self.workspace = workspace
        self.model = cfg.model or self.default_model
        self.pending_notes: list[str] = []  # said once: handed to the next proposal
        self.cut_noted = False

    def _send(self, turns: list[Turn], max_tokens: int, timeout: float) -> Reply:
        """One request through the SDK (no retries of its own), waiting at most timeout."""
        raise NotImplementedError

    # --- the agent interface ---

    def propose(self, request: Request) -> Proposal:
        turns = [first_turn(request, edit_instructions(self.cfg.edit_format))]
        usage, transcript, problem = Usage(), [], ""
        deadline = time.monotonic() + self.cfg.timeout_secs
        replies = self.cfg.repair_rounds + 1
        for number in range(1, replies + 1):
            if number > 1 and time.monotonic() > deadline:
                limit = f"agent.timeout_secs ({self.cfg.timeout_secs:g}s) ran out"
                return self._invalid(f"{limit}: {first_line(problem)}", transcript, usage)
            try:
                reply = self._call(turns, self.cfg.max_tokens, deadline)
            except CallFailed as err:
                return self._invalid(str(err), transcript, usage)
            self._note_cut(sum(len(turn.text) for turn in turns), reply.tokens.tokens_in)
            usage += self._priced(reply)
            transcript.append(reply.text)
            try:
                edit = self._accept(reply, request)
            except EditError as err:
                problem = str(err)
                transcript.append(REJECTED.format(number=number, problem=first_line(problem)))
                turns.append(Turn("assistant", reply.text or "(empty reply)"))
                turns.append(Turn("user", REPAIR.format(problem=problem)))
                continue
            return Proposal(
                train_py=edit.train_py,
                explanation=edit.explanation,
                raw_output="".join(transcript),
                usage=usage,
                notes=self._take_notes(),
            )
        counted = f"{replies} replies" if replies > 1 else "1 reply"
        reason = f"no usable edit in {counted}: {first_line(problem)}"
        return self._invalid(reason, transcript, usage)

    def complete(self, prompt: str) -> Answer:
        """One text-only request, with the retries and within the time of a proposal."""
        deadline = time.monotonic() + self.cfg.timeout_secs
        try:
            reply = self._call([Turn("user", prompt)], self.cfg.max_tokens, deadline)
        except CallFailed as err:
            return Answer(None, reason=str(err))
        usage = self._priced(reply)
        if reply.truncated:
            limit = f"the reply was cut off at the output limit ({self.cfg.max_tokens} tokens)"
            return Answer(reply.text, usage, reason=limit)
        return Answer(reply.text, usage)

    def check(self) -> str:
        started = time.monotonic()
        prompt = probe_prompt() if self.probes_context else CHECK_PROMPT
        try:
            reply = self._call(
                [Turn("user", prompt)], CHECK_MAX_TOKENS, started + self.cfg.timeout_secs
            )
        except CallFailed as err:
            raise AgentError(str(err)) from None
        line = f"{self.name} {self.model} answered in {time.monotonic() - started:.1f}s"
        if self.probes_context:
            self._note_cut(len(prompt), reply.tokens.tokens_in, len(prompt) // 5)
        if pricing.lookup(self.model, self.cfg.prices) is None:
            line += "; its price is unknown, so its cost is not tracked (see agent.prices)"
        notes = self._take_notes()
        return "; ".join([line, *(f"warning: {note}" for note in notes)])

    def unpriced(self) -> str | None:
        if pricing.lookup(self.model, self.cfg.prices) is None:
            return pricing.missing(self.model)
        return None

    # --- helpers ---

    def _call(self, turns: list[Turn], max_tokens: int, deadline: float) -> Reply:
        """One request with retries on transient failures, all of it within the deadline."""
        attempts = self.cfg.max_retries + 1
        for attempt in range(1, attempts + 1):
            left = deadline - time.monotonic()
            if left <= 0:
                raise CallFailed(self._out_of_time(attempt - 1))
            timeout = min(self.cfg.request_timeout_secs, left)
            try:
                return self._send(turns, max_tokens, timeout)
            except self.sdk.APIError as err:
                failure = self._failure(err, attempt, timeout)
                wait = self._retry_wait(err, attempt)
                if isinstance(failure, AgentError) or wait is None or attempt == attempts:
                    raise failure from None
                if time.monotonic() + wait >= deadline:
                    raise CallFailed(self._out_of_time(attempt)) from None
                time.sleep(wait)
        raise AssertionError("unreachable")

    def _retry_wait(self, err: Exception, attempt: int) -> float | None:
        """Seconds to wait before retrying err, or None when retrying cannot help."""
        if isinstance(err, self.sdk.APIStatusError):
            headers = err.response.headers
            if headers.get("x-should-retry") == "false":
                return None
            if headers.get("x-should-retry") != "true" and not (
                err.status_code in RETRIED_CLIENT_ERRORS or err.status_code >= 500
            ):
                return None
            for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
                try:
                    seconds = float(headers.get(name, "")) * scale
                except ValueError:
                    continue
                if 0 <= seconds <= MAX_RETRY_AFTER_SECS:
                    return seconds
        elif not isinstance(err, self.sdk.APIConnectionError):  # timeouts are connection errors
            return None
        return min(0.5 * 2 ** (attempt - 1), MAX_BACKOFF_SECS) * (1 - 0.25 * random.random())

    def _out_of_time(self, attempts: int) -> str:
        return (
            f"{self.name} API: no answer within agent.timeout_secs "
            f"({self.cfg.timeout_secs:g}s, {attempts} attempt(s))"
        )

    def _accept(self, reply: Reply, request: Request) -> Edit:
        if reply.truncated:
            raise EditError(
                f"your reply was cut off at the output limit ({self.cfg.max_tokens} tokens) "
                "before it was complete; answer again more briefly, with a short explanation"
            )
        if not reply.text.strip():
            raise EditError(f"your reply was empty (stop reason: {reply.stop_reason})")
        edit = apply_edit(self.cfg.edit_format, reply.text, request.train_py)
        problem = code_problem(edit.train_py, request.train_py, request.max_train_py_kb)
        if problem:
            raise EditError(problem)
        return edit

    def _priced(self, reply: Reply) -> Usage:
        tokens = reply.tokens
        dollars = pricing.cost(self.model, tokens, self.cfg.prices, reply.cache_writes)
        return Usage(tokens.tokens_in, tokens.tokens_out, tokens.tokens_cached, dollars)

    def _note_cut(self, chars: int, tokens_in: int, least: int | None = None) -> None:
        """Note once when the server counted far fewer prompt tokens than the prompt has."""
        least = chars // CHARS_PER_TOKEN_AT_MOST if least is None else least
        if self.cut_noted or not 0 < tokens_in < least:
            return
        self.cut_noted = True
        self.pending_notes.append(
            f"{self.name} API: the server read only {tokens_in} prompt tokens of a "
            f"{chars}-character prompt, so it cut the prompt; {CUT_HINT}"
        )

    def _take_notes(self) -> list[str]:
        notes, self.pending_notes = self.pending_notes, []
        return notes

    def _invalid(self, reason: str, transcript: list[str], usage: Usage) -> Proposal:
        return Proposal(
            train_py=None,
            invalid_reason=reason,
            raw_output="".join(transcript),
            usage=usage,
            notes=self._take_notes(),
        )

    def _clean(self, text: str) -> str:
        """One line, with the API key blanked out should a server ever echo it."""
        key = getattr(self.client, "api_key", None)
        if isinstance(key, str) and len(key) >= 8:
            text = text.replace(key, "[redacted]")
        return start_of(text)

    def _failure(self, err: Exception, attempts: int, timeout: float) -> Exception:
        """An SDK error as AgentError (the run cannot go on: bad key, no such model, a request
        the server will never accept) or CallFailed (this proposal)."""
        who = f"{self.name} API"
        tries = f"gave up after {attempts} attempt(s)"
        if isinstance(err, self.sdk.APITimeoutError):
            return CallFailed(f"{who}: no answer within {timeout:g}s ({tries})")
        if isinstance(err, self.sdk.APIConnectionError):
            cause = err.__cause__ or err
            detail = self._clean(str(cause)) or type(cause).__name__
            return CallFailed(f"{who}: connection failed: {detail} ({tries})")
        if isinstance(err, self.sdk.APIStatusError):
            status, message = err.status_code, self._clean(server_message(err))
            if 400 <= status < 500 and status not in RETRIED_CLIENT_ERRORS:
                label = FATAL_LABELS.get(status, "request rejected")
                hint = {
                    401: f"; check {self.key_env}",
                    404: f"; check agent.model ({self.model}) and agent.base_url",
                }.get(status, "")
                return AgentError(f"{who}: {label} (HTTP {status}: {message}){hint}")
            return CallFailed(f"{who}: HTTP {status}: {message} ({tries})")
        return CallFailed(f"{who}: {self._clean(str(err)) or type(err).__name__}")
