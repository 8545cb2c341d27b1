"""What a run did, for the prompt: its training seconds and memory, its log, its diff.

The agent reasons about the budget from these ("only ~5 epochs fit, so convergence speed matters
more than regularization"), so they are shown for the incumbent and for recent iterations, each
cut to a number of lines the prompt's token budget allows.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from pathlib import Path

from autoresearch.core.records import Iteration

LINE_CHARS = 300  # a log or diff line is cut to this many characters
HEAD_BYTES, TAIL_BYTES = 16_000, 64_000  # read from each end of a log: never the whole of it
GAP = "…"  # stands for the lines left out in the middle


@lru_cache(maxsize=1024)  # the recent iterations' diffs, made again for every prompt otherwise
def unified_diff(old: str, new: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), "a/train.py", "b/train.py"
    )
    return "".join(lines)


def run_line(it: Iteration) -> str:
    """'Training ran 287.3 s; peak memory 812 MB.' for an iteration that trained; '' otherwise.
    The seconds are the training process's, start to exit (or kill): Python and data loading too."""
    if not it.log_path and not it.train_seconds:
        return ""
    memory = f"; peak memory {it.peak_memory_mb:.0f} MB" if it.peak_memory_mb else ""
    return f"Training ran {it.train_seconds:.1f} s{memory}."


def _lines(text: str) -> list[str]:
    return [line.rstrip()[:LINE_CHARS] for line in text.splitlines() if line.strip()]


def log_lines(path: str | None, head: int, tail: int) -> list[str]:
    """The first head and the last tail non-empty lines of a training log, with GAP between them
    where lines are left out; [] for a missing log or head + tail == 0."""
    if not path or head + tail <= 0 or not Path(path).is_file():
        return []
    try:
        with open(path, "rb") as log:
            size = log.seek(0, 2)
            log.seek(0)
            if size <= HEAD_BYTES + TAIL_BYTES:
                lines = _lines(log.read().decode(errors="replace"))
                start = end = lines
            else:
                start = _lines(log.read(HEAD_BYTES).decode(errors="replace"))[:-1]  # cut line
                log.seek(size - TAIL_BYTES)
                end = _lines(log.read().decode(errors="replace"))[1:]
                lines = []
    except OSError:
        return []
    if lines and len(lines) <= head + tail:
        return lines
    first, last = start[:head], end[-tail:] if tail else []
    return [*first, GAP, *last] if first else last


def diff_lines(diff: str, count: int) -> list[str]:
    """The first count lines of a unified diff (without its ---/+++ header), GAP after them when
    more follow."""
    lines = [line[:LINE_CHARS] for line in diff.splitlines()]
    if lines[:2] and lines[0].startswith("--- ") and lines[1].startswith("+++ "):
        lines = lines[2:]
    if len(lines) <= count:
        return lines
    return [*lines[:count], f"{GAP} ({len(lines) - count} more diff lines)"]
