"""A fake LLM API for tests: an HTTP server on 127.0.0.1 that speaks the wire formats of
Anthropic's Messages API (POST /v1/messages) and OpenAI's chat completions
(POST /v1/chat/completions), answers from a script, and records every request it gets.

    with FakeLLMServer() as server:
        server.add(error_reply(429, "slow down"), anthropic_reply("```python\\n...\\n```"))
        ... point a real SDK client at server.url ...
        server.requests[0].body["messages"]

Besides the script it can behave like the real services do, whatever the order of requests:
`refuse(param, answer)` answers every request that carries `param` with `answer` (Claude
models without sampling parameters, Azure deployments that refuse `max_tokens`), and
`context_limit` makes it count prompt tokens like a server that cuts prompts to its context
length (Ollama's default), so that usage.prompt_tokens stays at the limit.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG_LIMIT_SECS = 10.0  # a hanging response gives up after this, or when the server closes
CHARS_PER_TOKEN = 3  # how the context_limit server counts a prompt's tokens
STAND_IN_KEY = "sk-test-SECRET-0123456789"  # both providers' API key in tests (conftest's api_keys)


@dataclass
class Scripted:
    """One scripted answer: a status and JSON body (after `delay` seconds), or `hang` (never
    answer), or `drop` (close the connection without a response)."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    action: str = "respond"  # respond | hang | drop
    delay: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: dict[str, Any]


def anthropic_reply(
    text: str,
    input_tokens: int = 1000,
    output_tokens: int = 200,
    cache_read: int = 0,
    stop_reason: str = "end_turn",
    cache_write: int = 0,
) -> Scripted:
    return Scripted(
        body={
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": "claude-fake",
            "content": [{"type": "text", "text": text}] if text else [],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cache_read_input_tokens": cache_read,
                "cache_creation_input_tokens": cache_write,
            },
        }
    )


def openai_reply(
    text: str | None,
    prompt_tokens: int = 1000,
    completion_tokens: int = 200,
    cached: int | None = None,
    finish_reason: str = "stop",
    cache_write: int | None = None,
) -> Scripted:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if cached is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    if cache_write is not None:  # GPT-5.6 and later
        usage.setdefault("prompt_tokens_details", {})["cache_write_tokens"] = cache_write
    return Scripted(
        body={
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": "gpt-fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish_reason,
                }
            ],
            "usage": usage,
        }
    )


def error_reply(status: int, message: str) -> Scripted:
    """An error both SDKs understand; retry-after-ms keeps their retries instant."""
    return Scripted(
        status=status,
        body={"type": "error", "error": {"type": "fake_error", "message": message}},
        headers={"retry-after-ms": "1"},
    )


def anthropic_sampling_rejected() -> Scripted:
    """What Claude Opus 4.7+, Sonnet 5 and Fable 5 answer to a request with `temperature`
    (reported in e.g. Comfy-Org/ComfyUI#13923, simstudioai/sim#5328)."""
    return Scripted(
        status=400,
        body={
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "message": "`temperature` is deprecated for this model.",
            },
            "request_id": "req_011CfakeSamplingParams",
        },
    )


def azure_param_rejected(param: str) -> Scripted:
    """Azure OpenAI refusing an output-limit name: reasoning deployments refuse `max_tokens`
    (lobehub/lobehub#5909), older API versions refuse `max_completion_tokens`
    (openai/openai-python#1724)."""
    if param == "max_tokens":
        error = {
            "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            "type": "invalid_request_error",
            "param": "max_tokens",
            "code": "unsupported_parameter",
        }
    else:
        error = {
            "message": f"Unrecognized request argument supplied: {param}",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    return Scripted(status=400, body={"error": error})


def hang() -> Scripted:
    return Scripted(action="hang")


def drop() -> Scripted:
    return Scripted(action="drop")


class FakeLLMServer:
    def __init__(self) -> None:
        self.script: deque[Scripted] = deque()
        self.requests: list[Received] = []
        self.refused: dict[str, Scripted] = {}
        self.context_limit: int | None = None
        self.closing = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, *answers: Scripted) -> None:
        self.script.extend(answers)

    def refuse(self, param: str, answer: Scripted) -> None:
        """Answer every request whose body has param with answer (the script is not used)."""
        self.refused[param] = answer

    def answer(self, body: dict[str, Any]) -> Scripted:
        refused = [answer for param, answer in self.refused.items() if param in body]
        if refused:
            return refused[0]
        answer = self.script.popleft() if self.script else _exhausted()
        usage = (answer.body or {}).get("usage") if isinstance(answer.body, dict) else None
        if self.context_limit is not None and isinstance(usage, dict) and "prompt_tokens" in usage:
            sent = json.dumps(body.get("messages", []))
            usage["prompt_tokens"] = min(len(sent) // CHARS_PER_TOKEN, self.context_limit)
        return answer

    def __enter__(self) -> FakeLLMServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def _handler(server: FakeLLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            body = json.loads(raw or b"{}")
            server.requests.append(Received(self.path, headers, body))
            answer = server.answer(body)
            if answer.action == "hang":
                server.closing.wait(HANG_LIMIT_SECS)
                self.close_connection = True
                return
            if answer.action == "drop":
                self.close_connection = True
                return
            server.closing.wait(answer.delay)
            payload = json.dumps(answer.body).encode()
            self.send_response(answer.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def _exhausted() -> Scripted:
    answer = error_reply(500, "the fake server's script ran out")
    answer.headers["x-should-retry"] = "false"
    return answer
