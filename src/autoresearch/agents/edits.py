"""Strict parsers for the two edit formats (the result is checked by agents/validate.py).

Every failure is an EditError whose message is precise enough to send back to the model.
Its first line is a summary that fits in a one-line status.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

OPEN_FENCE = re.compile(r"^(`{3,})\s*([\w+.-]*)")
PYTHON_TAGS = ("python", "py", "python3")
SEARCH, DIVIDER, REPLACE = "<<<<<<< SEARCH", "=======", ">>>>>>> REPLACE"
ONE_BLOCK = "put the complete new train.py in exactly one ```python block"


class EditError(Exception):
    """The reply cannot be turned into a usable train.py; the message says why."""


@dataclass
class Edit:
    train_py: str
    explanation: str


@dataclass
class _Block:
    line: int  # 1-based line of the SEARCH marker in the reply
    search: list[str] = field(default_factory=list)
    replace: list[str] = field(default_factory=list)


def apply_edit(edit_format: str, reply: str, train_py: str) -> Edit:
    """Turn a reply in the configured format into the new train.py (not yet validated)."""
    if edit_format == "whole":
        return parse_whole(reply)
    if edit_format == "search-replace":
        return parse_search_replace(reply, train_py)
    raise ValueError(f"unknown edit format {edit_format!r}")


def _prose(lines: list[str]) -> str:
    """Lines of explanation as one text, without runs of blank lines."""
    return re.sub(r"\n\s*\n(\s*\n)+", "\n\n", "\n".join(lines)).strip()


# --- whole file --------------------------------------------------------------------------------


def _closes(line: str, ticks: str) -> bool:
    stripped = line.strip()
    return len(stripped) >= len(ticks) and set(stripped) == {"`"}


def parse_whole(reply: str) -> Edit:
    """The reply holds the complete train.py in exactly one ```python block; the rest explains."""
    lines = reply.splitlines()
    python: list[tuple[int, int]] = []  # (opening fence index, closing fence index)
    others = 0
    i = 0
    while i < len(lines):
        match = OPEN_FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        ticks, tag = match.group(1), match.group(2).lower()
        end = i + 1
        while end < len(lines) and not _closes(lines[end], ticks):
            end += 1
        if tag in PYTHON_TAGS:
            if end == len(lines):
                raise EditError(
                    f"the ```python block opened on line {i + 1} of your reply is never closed "
                    "with ``` (was the reply cut off?); " + ONE_BLOCK
                )
            python.append((i, end))
        else:
            others += 1
        i = end + 1
    if not python:
        note = f" (it has {others} fenced block(s) not marked python)" if others else ""
        raise EditError(f"your reply has no ```python block{note}; {ONE_BLOCK}")
    if len(python) > 1:
        starts = ", ".join(str(start + 1) for start, _ in python)
        raise EditError(
            f"your reply has {len(python)} ```python blocks (opened on lines {starts}); "
            f"{ONE_BLOCK} and use no other ```python block"
        )
    start, end = python[0]
    code = "\n".join(lines[start + 1 : end])
    if not code.strip():
        raise EditError(f"the ```python block in your reply is empty; {ONE_BLOCK}")
    return Edit(train_py=code + "\n", explanation=_prose(lines[:start] + lines[end + 1 :]))


# --- search/replace ----------------------------------------------------------------------------


def _split_blocks(reply: str) -> tuple[list[_Block], str]:
    """The SEARCH/REPLACE blocks in the reply, and the text outside them (the explanation)."""
    blocks: list[_Block] = []
    outside: list[str | _Block] = []
    block: _Block | None = None
    in_replace = False
    for number, line in enumerate(reply.splitlines(), start=1):
        marker = line.rstrip()
        if block is None:
            if marker == SEARCH:
                block = _Block(number)
                in_replace = False
            elif marker in (DIVIDER, REPLACE):
                raise EditError(
                    f"line {number} of your reply has '{marker}' outside a SEARCH/REPLACE block; "
                    f"every block must start with a '{SEARCH}' line"
                )
            else:
                outside.append(line)
        elif not in_replace:
            if marker == DIVIDER:
                in_replace = True
            elif marker in (SEARCH, REPLACE):
                raise EditError(
                    f"SEARCH/REPLACE block {len(blocks) + 1} (line {block.line} of your reply) "
                    f"has no '{DIVIDER}' line between its SEARCH and REPLACE parts"
                )
            else:
                block.search.append(line)
        elif marker == REPLACE:
            blocks.append(block)
            outside.append(block)
            block = None
        elif marker == SEARCH:
            raise EditError(
                f"SEARCH/REPLACE block {len(blocks) + 1} (line {block.line} of your reply) "
                f"is not closed with '{REPLACE}' before the next '{SEARCH}'"
            )
        else:
            block.replace.append(line)
    if block is not None:
        raise EditError(
            f"SEARCH/REPLACE block {len(blocks) + 1} (line {block.line} of your reply) is never "
            f"closed with '{REPLACE}' (was the reply cut off?)"
        )
    return blocks, _explanation(outside)


def _explanation(items: list[str | _Block]) -> str:
    """The text outside the blocks, without the code fences that only wrapped blocks."""

    def blank(index: int) -> bool:
        item = items[index]
        return isinstance(item, str) and not item.strip()

    def next_to_block(index: int, step: int) -> bool:
        index += step
        while 0 <= index < len(items) and blank(index):
            index += step
        return 0 <= index < len(items) and isinstance(items[index], _Block)

    kept: list[str] = [
        item
        for index, item in enumerate(items)
        if isinstance(item, str)
        and not (item.startswith("```") and (next_to_block(index, 1) or next_to_block(index, -1)))
    ]
    return _prose(kept)


def _match_starts(text: str, search: str) -> list[int]:
    """Where `search` (whole lines) occurs in `text`, starting at a line start."""
    starts = []
    position = text.find(search)
    while position != -1:
        if position == 0 or text[position - 1] == "\n":
            starts.append(position)
        position = text.find(search, position + 1)
    return starts


def _no_match(number: int, block: _Block, text: str) -> str:
    head = f"SEARCH block {number} matches nothing in train.py"
    after = f" (as left by blocks 1-{number - 1}, which are applied first)" if number > 1 else ""
    file_lines = text.splitlines()
    exact, loose = set(file_lines), {line.strip() for line in file_lines}
    for index, line in enumerate(block.search, start=1):
        if line in exact:
            continue
        if line.strip() in loose:
            return (
                f"{head}{after}: its line {index} differs from train.py only in indentation or "
                f"trailing spaces:\n    {line.strip()}\n"
                "Copy the lines exactly as they are in train.py"
            )
        return (
            f"{head}{after}: its line {index} does not occur in train.py:\n    {line.strip()}\n"
            "The SEARCH part must copy lines of the current train.py exactly"
        )
    return (
        f"{head}{after}: each of its lines occurs in train.py, but not consecutively in this "
        "order; copy a contiguous run of lines exactly"
    )


def _apply_block(text: str, number: int, block: _Block) -> str:
    if not "".join(block.search).strip():
        raise EditError(
            f"SEARCH block {number} has an empty SEARCH part; quote the exact lines of train.py "
            "to replace"
        )
    search = "".join(line + "\n" for line in block.search)
    replace = "".join(line + "\n" for line in block.replace)
    starts = _match_starts(text, search)
    if not starts:
        raise EditError(_no_match(number, block, text))
    if len(starts) > 1:
        lines = ", ".join(str(text.count("\n", 0, start) + 1) for start in starts)
        raise EditError(
            f"SEARCH block {number} matches {len(starts)} places in train.py (lines {lines}); "
            "add surrounding lines to its SEARCH part so that it matches exactly one place"
        )
    start = starts[0]
    return text[:start] + replace + text[start + len(search) :]


def parse_search_replace(reply: str, train_py: str) -> Edit:
    """Apply the reply's SEARCH/REPLACE blocks, in order, to train.py."""
    blocks, explanation = _split_blocks(reply)
    if not blocks:
        raise EditError(
            f"your reply has no SEARCH/REPLACE blocks; give each change as a block that starts "
            f"with '{SEARCH}', has a '{DIVIDER}' line, and ends with '{REPLACE}'"
        )
    text = train_py.replace("\r\n", "\n")
    if not text.endswith("\n"):
        text += "\n"
    for number, block in enumerate(blocks, start=1):
        text = _apply_block(text, number, block)
    return Edit(train_py=text, explanation=explanation)
