"""The one check every agent's proposal goes through before any training budget is spent."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from autoresearch.agents.base import Proposal
from autoresearch.core import pysource

KB = 1024


def _normalized(code: str) -> list[str]:
    """The code as compared for "unchanged": trailing spaces and blank lines at either end do
    not count, since they cannot change what train.py does."""
    return [line.rstrip() for line in code.strip("\n").splitlines()]


def unchanged(new_code: str, old_code: str) -> bool:
    return _normalized(new_code) == _normalized(old_code)


def size_problem(size: int, max_kb: int | None) -> str | None:
    """Why a train.py of size bytes is too large, or None."""
    if max_kb is None or size <= max_kb * KB:
        return None
    shown = f"{size / KB:,.0f} KB" if size >= 10 * KB else f"{size:,} bytes"
    return f"train.py is {shown}, over [loop] max_train_py_kb = {max_kb}; make it shorter"


def read_train_py(path: Path, max_kb: int | None) -> tuple[str | None, str | None]:
    """The text of the train.py an agent wrote, opened without following a link and read no
    further than the size limit: (text, None), or (None, why it cannot be taken: gone, not a
    regular file, too large, or not kept faithfully as text)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None, "the agent deleted train.py"
    except OSError:  # ELOOP: a link
        return None, "the agent put a link in train.py's place"
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, "the agent put something else than a file in train.py's place"
        problem = size_problem(info.st_size, max_kb)
        if problem:
            return None, f"the new {problem}"
        data = f.read()
    try:
        return pysource.text(data), None
    except ValueError as err:
        return None, f"the new {err}"


def code_problem(new_code: str, old_code: str, max_kb: int | None = None) -> str | None:
    """Why new_code cannot replace old_code as train.py, or None. The first line is a summary
    for a status line; the rest (the offending line) helps a model repair it.

    compile(), not ast.parse(): `return` or `break` at module level, a nonlocal at the top and
    similar errors only the compiler reports would otherwise burn a full budget as a crash."""
    if not new_code.strip():
        return "the new train.py is empty"
    too_large = size_problem(len(new_code.encode(errors="surrogatepass")), max_kb)
    if too_large:
        return f"the new {too_large}"
    try:
        # A name no file has: for some errors Python reads the line from a file of that name.
        pysource.check_compiles(new_code, "<train.py>")
    except SyntaxError as err:
        where = f"line {err.lineno}: " if err.lineno else ""
        text = (err.text or "").strip()
        shown = f"\n    {text}" if text else ""
        return f"the new train.py is not valid Python: {where}{err.msg}{shown}"
    if unchanged(new_code, old_code):
        return "the new train.py is identical to the current one; make an actual change"
    return None


def check_proposal(proposal: Proposal, parent_code: str, max_kb: int | None = None) -> str | None:
    """Why a proposal cannot be trained (one line), or None."""
    if proposal.train_py is None:
        return proposal.invalid_reason or "the agent returned no train.py"
    problem = code_problem(proposal.train_py, parent_code, max_kb)
    return problem.splitlines()[0] if problem else None
