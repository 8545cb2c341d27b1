"""The one check every agent's proposal goes through before any training budget is spent."""

from __future__ import annotations

from autoresearch.agents.base import Proposal


def _normalized(code: str) -> list[str]:
    """The code as compared for "unchanged": trailing spaces and blank lines at either end do
    not count, since they cannot change what train.py does."""
    return [line.rstrip() for line in code.strip("\n").splitlines()]


def unchanged(new_code: str, old_code: str) -> bool:
    return _normalized(new_code) == _normalized(old_code)


def code_problem(new_code: str, old_code: str) -> str | None:
    """Why new_code cannot replace old_code as train.py, or None. The first line is a summary
    for a status line; the rest (the offending line) helps a model repair it.

    compile(), not ast.parse(): `return` or `break` at module level, a nonlocal at the top and
    similar errors only the compiler reports would otherwise burn a full budget as a crash."""
    if not new_code.strip():
        return "the new train.py is empty"
    try:
        # A name no file has: for some errors Python reads the line from a file of that name.
        compile(new_code, "<train.py>", "exec", dont_inherit=True)
    except SyntaxError as err:
        where = f"line {err.lineno}" if err.lineno else "train.py"
        text = (err.text or "").strip()
        shown = f"\n    {text}" if text else ""
        return f"the new train.py is not valid Python: {where}: {err.msg}{shown}"
    except ValueError as err:  # null bytes, on Python 3.11
        return f"the new train.py is not valid Python: {err}"
    if unchanged(new_code, old_code):
        return "the new train.py is identical to the current one; make an actual change"
    return None


def check_proposal(proposal: Proposal, parent_code: str) -> str | None:
    """Why a proposal cannot be trained (one line), or None."""
    if proposal.train_py is None:
        return proposal.invalid_reason or "the agent returned no train.py"
    problem = code_problem(proposal.train_py, parent_code)
    return problem.splitlines()[0] if problem else None
