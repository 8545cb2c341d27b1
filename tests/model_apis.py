"""Stand-ins of the two model APIs the real `claude` and `codex` CLIs talk to, for running those
CLIs end to end: an HTTP server on 127.0.0.1 (a free port, a thread of this process) that
answers from a script of turns and logs every request it receives.

- Anthropic's Messages API (POST /v1/messages): with "stream": true the answer is server-sent
  events as the API sends them (docs.anthropic.com/en/api/messages-streaming): message_start
  (a Message with empty content and the input usage), per content block content_block_start,
  content_block_delta (text_delta, or input_json_delta with partial JSON for tool_use) and
  content_block_stop, then message_delta (stop_reason and the output usage) and message_stop;
  without it, one Message object. POST /v1/messages/count_tokens answers {"input_tokens": n}.
- OpenAI's Responses API (POST /v1/responses, streaming; platform.openai.com/docs/api-reference/
  responses-streaming): response.created, per output item response.output_item.added, then
  response.content_part.added / response.output_text.delta / .done / content_part.done for a
  message or response.function_call_arguments.delta / .done for a function_call, then
  (response.custom_tool_call_input.delta / .done for a freeform custom_tool_call), then
  response.output_item.done, and response.completed with the response's usage (input_tokens,
  input_tokens_details.cached_tokens, output_tokens, total_tokens).

A turn is Text(...) or Call(tool, arguments): each request that offers tools takes the next
turn; a request without tools (a CLI's side question, e.g. a title) gets a short text and takes
none. When the script runs out the model says "done".

    with ModelAPI([Call("Edit", {...}), Text("Larger batches\\n\\n...")]) as api:
        ... run the CLI with ANTHROPIC_BASE_URL=api.url ...
        api.tool_results()  # every tool result the CLI sent back, as text
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "claude-stand-in-1"
INPUT_TOKENS = 1200
CACHED_TOKENS = 300
OUTPUT_TOKENS = 80
SIDE_ANSWER = "Editing train.py"


@dataclass
class Text:
    text: str


@dataclass
class Call:
    """A tool call: JSON arguments (Anthropic tool_use, Responses function_call), or a string
    for a freeform tool (Responses custom_tool_call, e.g. codex's apply_patch)."""

    tool: str
    arguments: dict[str, Any] | str


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: dict[str, Any]


@dataclass
class ModelAPI:
    turns: list[Text | Call] = field(default_factory=list)
    model: str = MODEL

    def __post_init__(self) -> None:
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> ModelAPI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def next_turn(self, body: dict[str, Any]) -> Text | Call:
        with self.lock:
            if not body.get("tools"):
                return Text(SIDE_ANSWER)
            return self.turns.pop(0) if self.turns else Text("done")

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self.ids):06d}"

    # --- what the CLI sent ------------------------------------------------------------------

    def main_requests(self) -> list[Received]:
        return [r for r in self.requests if r.body.get("tools")]

    def tool_results(self) -> list[str]:
        """Every tool result the CLI sent back to the model, as text, once each (each request
        repeats the conversation): Anthropic tool_result blocks, Responses function_call_output
        and custom_tool_call_output items."""
        found: dict[str, str] = {}
        for request in self.requests:
            blocks = [
                block
                for message in request.body.get("messages", [])
                if isinstance(message, dict) and isinstance(message.get("content"), list)
                for block in message["content"]
            ]
            for block in [*blocks, *request.body.get("input", [])]:
                if not isinstance(block, dict):
                    continue
                if block.get("type") == "tool_result":
                    found[block.get("tool_use_id", "")] = _text(block.get("content"))
                elif str(block.get("type", "")).endswith("call_output"):
                    found[block.get("call_id", "")] = _text(block.get("output"))
        return list(found.values())

    def everything_sent(self) -> str:
        return "\n".join(json.dumps(r.body) for r in self.requests)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(_text(v.get("text", v) if isinstance(v, dict) else v) for v in value)
    return json.dumps(value)


def _usage_anthropic(output: bool) -> dict[str, int]:
    return {
        "input_tokens": INPUT_TOKENS - CACHED_TOKENS,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": CACHED_TOKENS,
        "output_tokens": OUTPUT_TOKENS if output else 1,
    }


def _anthropic_blocks(api: ModelAPI, turn: Text | Call) -> tuple[list[dict], str]:
    if isinstance(turn, Call):
        block = {"type": "tool_use", "id": api.new_id("toolu"), "name": turn.tool}
        return [{**block, "input": turn.arguments}], "tool_use"
    return [{"type": "text", "text": turn.text}], "end_turn"


def _anthropic_message(api: ModelAPI, body: dict) -> dict:
    blocks, stop = _anthropic_blocks(api, api.next_turn(body))
    return {
        "id": api.new_id("msg"), "type": "message", "role": "assistant", "model": api.model,
        "content": blocks, "stop_reason": stop, "stop_sequence": None,
        "usage": _usage_anthropic(output=True),
    }  # fmt: skip


def _anthropic_events(api: ModelAPI, body: dict) -> list[tuple[str, dict]]:
    message = _anthropic_message(api, body)
    blocks = message["content"]
    start = {**message, "content": [], "stop_reason": None, "usage": _usage_anthropic(False)}
    events = [("message_start", {"message": start}), ("ping", {})]
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            empty, delta = (
                {"type": "text", "text": ""},
                {"type": "text_delta", "text": block["text"]},
            )
        else:
            empty = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        events += [
            ("content_block_start", {"index": index, "content_block": empty}),
            ("content_block_delta", {"index": index, "delta": delta}),
            ("content_block_stop", {"index": index}),
        ]
    stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    events += [
        ("message_delta", {"delta": stop, "usage": {"output_tokens": OUTPUT_TOKENS}}),
        ("message_stop", {}),
    ]
    return [(name, {"type": name, **data}) for name, data in events]


def _responses_item(api: ModelAPI, turn: Text | Call) -> dict:
    if isinstance(turn, Call) and isinstance(turn.arguments, str):
        return {
            "type": "custom_tool_call", "id": api.new_id("ctc"), "call_id": api.new_id("call"),
            "name": turn.tool, "input": turn.arguments, "status": "completed",
        }  # fmt: skip
    if isinstance(turn, Call):
        return {
            "type": "function_call", "id": api.new_id("fc"), "call_id": api.new_id("call"),
            "name": turn.tool, "arguments": json.dumps(turn.arguments), "status": "completed",
        }  # fmt: skip
    part = {"type": "output_text", "text": turn.text, "annotations": []}
    return {
        "type": "message", "id": api.new_id("msg"), "role": "assistant",
        "status": "completed", "content": [part],
    }  # fmt: skip


def _responses_events(api: ModelAPI, body: dict) -> list[tuple[str, dict]]:
    item = _responses_item(api, api.next_turn(body))
    response = {
        "id": api.new_id("resp"), "object": "response", "created_at": 0,
        "status": "in_progress", "model": body.get("model") or api.model, "output": [],
        "usage": None,
    }  # fmt: skip
    at = {"output_index": 0}
    events = [("response.created", {"response": response})]
    if item["type"] == "function_call":
        opened = {**item, "arguments": "", "status": "in_progress"}
        args, ref = item["arguments"], {**at, "item_id": item["id"]}
        events += [
            ("response.output_item.added", {**at, "item": opened}),
            ("response.function_call_arguments.delta", {**ref, "delta": args}),
            ("response.function_call_arguments.done", {**ref, "arguments": args}),
        ]
    elif item["type"] == "custom_tool_call":
        opened = {**item, "input": "", "status": "in_progress"}
        given, ref = item["input"], {**at, "item_id": item["id"]}
        events += [
            ("response.output_item.added", {**at, "item": opened}),
            ("response.custom_tool_call_input.delta", {**ref, "delta": given}),
            ("response.custom_tool_call_input.done", {**ref, "input": given}),
        ]
    else:
        text = item["content"][0]["text"]
        ref = {**at, "item_id": item["id"], "content_index": 0}
        part = {"type": "output_text", "text": "", "annotations": []}
        events += [
            ("response.output_item.added", {**at, "item": {**item, "content": []}}),
            ("response.content_part.added", {**ref, "part": part}),
            ("response.output_text.delta", {**ref, "delta": text}),
            ("response.output_text.done", {**ref, "text": text}),
            ("response.content_part.done", {**ref, "part": {**part, "text": text}}),
        ]
    usage = {
        "input_tokens": INPUT_TOKENS,
        "input_tokens_details": {"cached_tokens": CACHED_TOKENS},
        "output_tokens": OUTPUT_TOKENS,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
    }
    done = {**response, "status": "completed", "output": [item], "usage": usage}
    events += [
        ("response.output_item.done", {**at, "item": item}),
        ("response.completed", {"response": done}),
    ]
    return [
        (name, {"type": name, "sequence_number": n, **data})
        for n, (name, data) in enumerate(events)
    ]


def _handler(api: ModelAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._log({})
            self._json(404, {"type": "error", "error": {"type": "not_found_error",
                                                        "message": "not in the stand-in"}})  # fmt: skip

        def do_HEAD(self) -> None:
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                body = {}
            self._log(body)
            path = self.path.split("?")[0]
            if path.endswith("/messages/count_tokens"):
                self._json(200, {"input_tokens": INPUT_TOKENS})
            elif path.endswith("/messages") and body.get("stream"):
                self._events(_anthropic_events(api, body))
            elif path.endswith("/messages"):
                self._json(200, _anthropic_message(api, body))
            elif path.endswith("/responses"):
                self._events(_responses_events(api, body))
            else:
                self._json(404, {"error": {"message": f"{path} is not in the stand-in"}})

        def _log(self, body: dict) -> None:
            headers = {name.lower(): value for name, value in self.headers.items()}
            with api.lock:
                api.requests.append(Received(self.path, headers, body))

        def _json(self, status: int, value: Any) -> None:
            payload = json.dumps(value).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _events(self, events: list[tuple[str, dict]]) -> None:
            payload = b"".join(
                f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events
            )
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler
