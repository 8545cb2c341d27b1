"""Text from agents, experiments and users, made safe to show: on a terminal, in markdown, in TSV,
in git and in JSON. The store keeps the text verbatim; only what is shown is escaped.

Escapes are visible (`\\x1b`, `\\u202e`, `\\udcff`), so nothing is hidden and nothing acts: no
terminal control sequences, no bidirectional overrides, no lone surrogates (undecodable bytes).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata

# Bidirectional controls reorder what a reader sees ("trojan source"); shown escaped too.
_BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]<>&|~$!])")


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _unsafe(ch: str) -> bool:
    """Control characters (newlines and tabs too), line separators, surrogates, bidi controls."""
    return ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp")


def printable(text: str) -> str:
    """text with every control character escaped but newlines and tabs (multi-line text)."""
    return "".join(_escape(ch) if ch not in "\n\t" and _unsafe(ch) else ch for ch in text)


def one_line(text: str) -> str:
    """text on one line: newlines and tabs escaped too."""
    return "".join(_escape(ch) if _unsafe(ch) else ch for ch in text)


ELLIPSIS = "…"  # marks where shortened text was cut
DESCRIPTION_CHARS = 80  # an iteration's description in a line of progress


def shorten(text: str, width: int) -> str:
    """text on one line in at most width characters: cut after a clause (`, ` or `; `) in its
    second half, else at a space, never inside a word or a value (`BATCH_SIZE 32 -> 317` never
    shows as `-> 31`); the cut marked with "…". A first word longer than width is cut where it
    must be, marked the same way."""
    line = one_line(text).strip()
    if len(line) <= width:
        return line
    room = width - len(ELLIPSIS)  # the most characters kept
    clause = max(line.rfind(", ", 0, room + 2), line.rfind("; ", 0, room + 2))
    cut = clause if clause >= width // 2 else line.rfind(" ", 0, room + 1)  # a whole change
    head = line[:cut] if cut > 0 else line[:room]
    return head.rstrip(" ,;:") + ELLIPSIS


def markdown_inline(text: str) -> str:
    """text as one line of literal markdown (a table cell, a list item): no markup takes effect."""
    return _MARKDOWN_INLINE.sub(r"\\\1", one_line(text))


def fenced(text: str, info: str = "text") -> str:
    """text in a code block no line of it can close: the fence is longer than any backtick run."""
    body = printable(text).rstrip("\n")
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{body}\n{fence}"


def git_message(text: str) -> str:
    """A commit message git accepts: no NUL bytes or other control characters, valid UTF-8."""
    return printable(text)


def encode(text: str) -> bytes:
    """UTF-8 bytes of any str: undecodable bytes (surrogateescape) come back as they were."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def strict_json(value, indent: int | None = None) -> str:
    """JSON that any parser reads: a non-finite number (from an older run) becomes null."""
    return json.dumps(_finite(value), indent=indent, allow_nan=False)
