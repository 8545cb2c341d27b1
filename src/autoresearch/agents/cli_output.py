"""Reading what the claude and codex CLIs print: the explanation, usage and cost, and why a
call failed."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from autoresearch.agents.validate import unchanged
from autoresearch.core.records import Usage

# codex's bubblewrap failing to start (see CODEX_ARGS in command.py for the messages)
# (its first sentence: "bwrap: No permissions to create a new namespace, likely because ...")
SANDBOX_FAILURE = re.compile(r"bwrap: [^\n.]*|landlock[^\n.]*|sandbox helper failed[^\n.]*", re.I)
# The lines of a failing program's output that say why: "Error: Missing optional dependency
# @openai/codex-linux-x64. ..." from codex.js comes before a stack trace that a tail would keep.
EXPLAINING = re.compile(r"^\s*(?:[\w.]*(?:Error|Exception)\b|error\b|fatal\b|panic)[^\n]*", re.M)
REASON_CHARS = 300

# What is read of files an agent writes besides train.py: codex's last message (the explanation
# keeps 20,000 characters of it), and train.py where it may be unchanged but for blank space.
LAST_MESSAGE_AT_MOST = 1_000_000


class Finished(Protocol):
    stdout: str
    stderr: str
    returncode: int | None


@dataclass
class Outcome:
    explanation: str = ""
    usage: Usage = field(default_factory=lambda: Usage(cost_usd=None))
    reason: str | None = None
    denied: list[str] = field(default_factory=list)  # tool calls the agent was refused
    sandbox_failure: str = ""  # the agent's own sandbox could not start (its message)
    model: str = ""  # the model the CLI says it ran, when it says so


def end_of(text: str, limit: int = REASON_CHARS) -> str:
    """The end of text on one line (its whitespace collapsed), its last limit characters: where
    a failing program says why."""
    line = " ".join(text.split())
    return line if len(line) <= limit else "..." + line[-limit:]


def explain(text: str, limit: int = REASON_CHARS) -> str:
    """Why a program failed, in one line: its error lines (the first ones, when there are many)
    where it printed any, else the end of its output."""
    found = list(dict.fromkeys(" ".join(m.group(0).split()) for m in EXPLAINING.finditer(text)))
    if not found:
        return end_of(text, limit)
    line = "; ".join(found)
    return line if len(line) <= limit else line[:limit] + "..."


def exit_reason(name: str, run: Finished) -> str:
    detail = explain(run.stderr) or explain(run.stdout) or "no output"
    return f"`{name}` exited with code {run.returncode}: {detail}"


def blocked(outcome: Outcome, code: str | None, old_code: str) -> list[str]:
    """Why an agent left train.py unchanged, when it was stopped rather than idle: its own
    sandbox failed (codex, which uses its own only where autoresearch's is off), or a
    permission rule refused its edit (claude). Sets the outcome's reason then; otherwise the
    same facts come back as notes. code: train.py as it was left (None: not a regular file)."""
    notes = []
    if outcome.sandbox_failure:
        notes.append(
            f"codex's own sandbox cannot run here ({outcome.sandbox_failure}): its bubblewrap "
            "needs unprivileged user namespaces, which this container or kernel blocks; allow "
            "them, or make autoresearch's sandbox work (codex then runs inside it without its "
            "own): with both off, codex cannot go without its own"
        )
    if outcome.denied:
        notes.append(f"claude was refused {', '.join(outcome.denied)}")
    kept = code is not None and unchanged(code, old_code)
    if notes and outcome.reason is None and kept:
        outcome.reason = f"{'; '.join(notes)}; train.py is unchanged"
        return []
    return notes


def _claude_result(stdout: str) -> dict | None:
    """The result object: all of stdout (the documented single object), or the last "result"
    of the array of every message that verbose mode prints instead (`--verbose`, or verbose on
    in the user's settings; anthropics/claude-code#84784); either may follow other output."""
    text = stdout.strip()
    for candidate in (text, text.rsplit("\n", 1)[-1]):
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, list):
            results = [m for m in value if isinstance(m, dict) and m.get("type") == "result"]
            value = results[-1] if results else None
        if isinstance(value, dict):
            return value
    return None


def _denial(entry: object) -> str:
    """One permission_denials entry ({tool_name, tool_use_id, tool_input}) as Tool(target)."""
    entry = entry if isinstance(entry, dict) else {}
    given = entry.get("tool_input") if isinstance(entry.get("tool_input"), dict) else {}
    target = next((given[k] for k in ("file_path", "path", "command", "url") if k in given), "")
    return f"{entry.get('tool_name', 'a tool')}({end_of(str(target), 80)})"


def _claude_model(used: object) -> str:
    """The model that did the work: of modelUsage ({model: {outputTokens, costUSD, ...}}), the
    one with the most output tokens (a side call may use a small model)."""
    if not isinstance(used, dict) or not used:
        return ""
    out = {m: _int(v.get("outputTokens")) if isinstance(v, dict) else 0 for m, v in used.items()}
    return str(max(out, key=out.__getitem__))


def claude_outcome(run: Finished) -> Outcome:
    """Claude Code's result: subtype "success" with `result`, or an error subtype
    ("error_max_turns", "error_during_execution", ...) with `errors` and no `result`; is_error
    can be false on those, and true on a "success" that failed (e.g. "Not logged in")."""
    data = _claude_result(run.stdout)
    if data is None:
        if run.returncode != 0:
            return Outcome(reason=exit_reason("claude", run))
        return Outcome(reason=f"claude printed no JSON result: {end_of(run.stdout, 120)}")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    cached = _int(usage.get("cache_read_input_tokens"))
    cost = data.get("total_cost_usd")
    denials = data.get("permission_denials")
    outcome = Outcome(
        explanation=data["result"] if isinstance(data.get("result"), str) else "",
        usage=Usage(
            tokens_in=_int(usage.get("input_tokens"))
            + _int(usage.get("cache_creation_input_tokens"))
            + cached,
            tokens_out=_int(usage.get("output_tokens")),
            tokens_cached=cached,
            cost_usd=float(cost) if isinstance(cost, int | float) else None,
        ),
        denied=[_denial(entry) for entry in denials] if isinstance(denials, list) else [],
        model=_claude_model(data.get("modelUsage")),
    )
    kind = data.get("subtype") if data.get("subtype") != "success" else None
    if data.get("is_error") or data.get("type") != "result" or kind:
        errors = data.get("errors") if isinstance(data.get("errors"), list) else []
        detail = "; ".join(end_of(str(e)) for e in errors) or end_of(outcome.explanation)
        outcome.reason = (
            f"claude reported an error{f' ({kind})' if kind else ''}: {detail or 'no message'}"
        )
    elif run.returncode != 0:
        outcome.reason = exit_reason("claude", run)
    return outcome


def codex_outcome(run: Finished, last_message: Path) -> Outcome:
    """Usage from turn.completed events; "error" events are often retries, so only turn.failed
    or the exit code make the call invalid. Event shapes: codex-rs/exec/src/exec_events.rs
    (command_execution items carry aggregated_output, exit_code, status)."""
    outcome, failure, last_error = Outcome(), None, ""
    for line in run.stdout.splitlines():
        event = _json_object(line) or {}
        kind, item, usage = event.get("type"), event.get("item"), event.get("usage")
        if kind == "turn.completed" and isinstance(usage, dict):
            outcome.usage += Usage(
                tokens_in=_int(usage.get("input_tokens")),
                tokens_out=_int(usage.get("output_tokens")),
                tokens_cached=_int(usage.get("cached_input_tokens")),
                cost_usd=None,
            )
        elif kind == "item.completed" and isinstance(item, dict):
            if item.get("type") == "agent_message" and isinstance(item.get("text"), str):
                outcome.explanation = item["text"]
            # a failed command or patch: its output says why (aggregated_output, message)
            said = f"{item.get('aggregated_output', '')}\n{item.get('message', '')}"
            found = SANDBOX_FAILURE.search(said)
            if found and item.get("status") != "completed":
                outcome.sandbox_failure = " ".join(found.group(0).split())[:160]
        elif kind == "turn.failed":
            error = event.get("error") if isinstance(event.get("error"), dict) else {}
            failure = end_of(str(error.get("message", ""))) or "turn failed"
        elif kind == "error":
            last_error = end_of(str(event.get("message", "")))
    said = _end_of(last_message, LAST_MESSAGE_AT_MOST)
    if said.strip():
        outcome.explanation = said
    found = SANDBOX_FAILURE.search(run.stderr)  # its own warning at startup
    if found and not outcome.sandbox_failure:
        outcome.sandbox_failure = " ".join(found.group(0).split())[:160]
    if failure:
        outcome.reason = f"codex failed: {failure}"
    elif run.returncode != 0:
        detail = last_error or explain(run.stderr) or "no output"
        outcome.reason = f"`codex` exited with code {run.returncode}: {detail}"
    return outcome


def _end_of(path: Path, limit: int) -> str:
    """The last limit bytes of a file the agent wrote ("" if there is none)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - limit))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _json_object(line: str) -> dict | None:
    """The JSON object on a line of JSONL, or None."""
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
