"""Checks that run before any training: a wrong interpreter or missing data stops at once."""

from __future__ import annotations

import ast
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from autoresearch import task
from autoresearch.config import Config
from autoresearch.experiment import python_path
from autoresearch.probe import run_quietly
from autoresearch.sandbox_check import check_sandbox


@dataclass
class Check:
    name: str
    ok: bool
    detail: str  # what was found, or what is wrong and how to fix it


def check_files(workspace: Path, cfg: Config) -> str:
    for name in ("prepare.py", "train.py", "program.md"):
        if not (workspace / name).is_file():
            raise ValueError(f"{workspace / name} is missing")
    try:  # bytes, as Python reads a script: a BOM or a coding line is fine
        ast.parse((workspace / "train.py").read_bytes())
    except SyntaxError as err:
        raise ValueError(f"train.py line {err.lineno}: {err.msg}") from None
    try:
        (workspace / "program.md").read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"program.md is not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset "
            f"{err.start}); save it as UTF-8"
        ) from None
    return "prepare.py, train.py, program.md present; train.py parses; program.md is UTF-8"


# The probe prints this marker and its version: only a Python interpreter can.
_PROBE = "autoresearch-probe"
PROBE_TIMEOUT_SECS = 60


def _probe(python: str, code: str) -> tuple[int | None, str, str]:
    """python -c code, contained: (exit code or None, out, err)."""
    return run_quietly([python, "-c", code], PROBE_TIMEOUT_SECS)


def check_interpreter(workspace: Path, cfg: Config) -> str:
    python = python_path(workspace, cfg)
    resolved = shutil.which(python) if "/" not in python else python
    if not resolved or not os.access(resolved, os.X_OK) or os.path.isdir(resolved):
        raise ValueError(
            f"training interpreter '{cfg.python}' not found; set `python` in autoresearch.toml "
            "(or --python) to an interpreter that has torch installed"
        )
    modules = task.required_modules(workspace)
    code = (
        f"import sys; import {', '.join(modules)}; "
        f"print('{_PROBE}', sys.implementation.name, '%d.%d.%d' % sys.version_info[:3])"
    )
    try:
        returncode, stdout, stderr = _probe(resolved, code)
    except OSError as err:
        raise ValueError(f"training interpreter '{resolved}' does not run: {err}") from None
    if returncode is None:
        raise ValueError(
            f"training interpreter '{resolved}' did not answer in {PROBE_TIMEOUT_SECS} s "
            "(python -c 'import ...; print(version)'); point `python` at a Python interpreter"
        )
    if returncode != 0:
        last = (stderr.strip().splitlines() or [f"exit code {returncode}"])[-1]
        raise ValueError(
            f"training interpreter '{resolved}' cannot import {', '.join(modules)} ({last}); "
            f"install them there (`{resolved} -m pip install ...`) "
            "or point `python` at an interpreter that has them"
        )
    found = re.search(rf"^{_PROBE} (\S+) (3\.\d+\.\d+)$", stdout, re.MULTILINE)
    if not found:
        raise ValueError(
            f"training interpreter '{resolved}' is not Python 3: `python -c` did not print its "
            "version; point `python` at a Python interpreter that has torch installed"
        )
    name = "Python" if found[1] == "cpython" else found[1]
    return f"{resolved} ({name} {found[2]}) imports {', '.join(modules)}"


def check_data(workspace: Path, cfg: Config) -> str:
    return task.ensure_data(workspace, cfg)


def check_agent(workspace: Path, cfg: Config) -> str:
    """The configured agent answers a tiny request (auto: says which one it picked)."""
    from autoresearch.agents.base import AgentError
    from autoresearch.agents.factory import build

    try:
        agent, notice = build(cfg.agent, workspace)
        answer = agent.check()
    except AgentError as err:
        raise ValueError(str(err)) from None
    return f"{notice}; {answer}" if notice else answer


def agent_checks(cfg: Config) -> list[tuple[str, Callable[[Path, Config], str]]]:
    """The agent's check, and the strategist's where it has an agent of its own."""
    from autoresearch.strategist import has_own_agent

    own = [("strategist", check_strategist)] if has_own_agent(cfg) else []
    return [("agent", check_agent), *own]


def check_strategist(workspace: Path, cfg: Config) -> str:
    """The strategist's own agent answers a tiny request."""
    from autoresearch import strategist
    from autoresearch.agents.base import AgentError

    try:
        answer = strategist.build(cfg, workspace, None).check()
    except AgentError as err:
        raise ValueError(str(err)) from None
    return f"{strategist.describe(cfg)}; {answer}"


CHECKS: list[tuple[str, Callable[[Path, Config], str]]] = [
    ("workspace", check_files),
    ("interpreter", check_interpreter),
    ("data", check_data),
    ("sandbox", check_sandbox),
]


def _checks(workspace: Path, cfg: Config, extra):
    """Each check's result, in order, computed only as far as it is consumed."""
    for name, fn in [*CHECKS, *extra]:
        try:
            yield Check(name, True, fn(workspace, cfg))
        except (ValueError, task.TaskError) as err:
            yield Check(name, False, str(err))


def run_checks(workspace: Path, cfg: Config, extra=()) -> list[Check]:
    """Every check, in order; each gives one line."""
    return list(_checks(workspace, cfg, extra))


def first_failure(workspace: Path, cfg: Config, extra=()) -> Check | None:
    """Stops at the first failing check (for commands that are about to train)."""
    return next((check for check in _checks(workspace, cfg, extra) if not check.ok), None)
