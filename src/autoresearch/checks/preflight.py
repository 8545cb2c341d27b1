"""Checks that run before any training: a wrong interpreter or missing data stops at once."""

from __future__ import annotations

import os
import re
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path

from autoresearch.agents.validate import size_problem
from autoresearch.checks.sandbox_check import Check, check_sandbox
from autoresearch.core import pysource
from autoresearch.core.config import CONFIG_NAME, Config
from autoresearch.core.log_metrics import self_reported, source_note
from autoresearch.training import task, train_command
from autoresearch.training.probe import run_quietly


def check_files(workspace: Path, cfg: Config) -> str:
    # With a self-reported metric prepare.py is optional: only train.py may need it.
    needed = [] if self_reported(cfg) else ["prepare.py"]
    for name in [*needed, "train.py", "program.md"]:
        if not (workspace / name).is_file():
            raise ValueError(f"{workspace / name} is missing")
    train = workspace / "train.py"
    too_large = size_problem(train.stat().st_size, cfg.loop.max_train_py_kb)
    if too_large:
        raise ValueError(f"{too_large}, or raise the limit in {CONFIG_NAME}")
    source = train.read_bytes()
    pysource.text(source)  # kept as UTF-8 text, it must stay the same program
    try:  # bytes, as Python reads a script
        pysource.parse(source)
    except SyntaxError as err:
        where = f" line {err.lineno}" if err.lineno else ""
        raise ValueError(f"train.py{where}: {err.msg}") from None
    try:
        (workspace / "program.md").read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"program.md is not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset "
            f"{err.start}); save it as UTF-8"
        ) from None
    present = [n for n in ("prepare.py", "train.py", "program.md") if (workspace / n).is_file()]
    return f"{', '.join(present)} present; train.py parses; program.md is UTF-8"


# The probe prints this marker and its version: only a Python interpreter can.
_PROBE = "autoresearch-probe"
PROBE_TIMEOUT_SECS = 60
_NO_BYTECODE = {"PYTHONDONTWRITEBYTECODE": "1"}  # importing prepare.py leaves no __pycache__


def _probe(argv: list[str], cwd: Path | None = None, env=None) -> tuple[int | None, str, str]:
    """argv, contained: (exit code or None, out, err)."""
    return run_quietly(argv, PROBE_TIMEOUT_SECS, cwd=cwd, env=env)


def check_interpreter(workspace: Path, cfg: Config) -> str:
    return interpreter_line(workspace, cfg, task.probe_modules(workspace, cfg), workspace)


def interpreter_line(workspace: Path, cfg: Config, modules: tuple[str, ...], cwd: Path) -> str:
    """The training command of workspace's configuration runs here and imports modules (in cwd,
    a copy of the workspace: on a Ray node, the files shipped there)."""
    command = train_command.resolve(workspace, cfg)
    found = ""
    if cfg.command:
        program = train_command.program_path(workspace, cfg.command[0])
        if program is None:
            raise ValueError(
                f"the training command's program '{cfg.command[0]}' is not found (on PATH, or "
                "relative to the workspace); install it, or fix `command` in autoresearch.toml"
            )
        found = f"command {shlex.join(cfg.command)} ({program}); "
    if command.uses_uv:
        return found + _check_uv(workspace, command, modules, cwd)
    python = command.python
    resolved = shutil.which(python) if "/" not in python else python
    if not resolved or not os.access(resolved, os.X_OK) or os.path.isdir(resolved):
        raise ValueError(
            f"training interpreter '{cfg.python}' not found; set `python` in autoresearch.toml "
            "(or --python) to an interpreter that has torch installed"
        )
    try:
        argv, env = [resolved, "-c", _code(modules)], {**os.environ, **_NO_BYTECODE}
        returncode, stdout, stderr = _probe(argv, cwd=cwd, env=env)
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
    version = _version(stdout)
    if not version:
        raise ValueError(
            f"training interpreter '{resolved}' is not Python 3: `python -c` did not print its "
            "version; point `python` at a Python interpreter that has torch installed"
        )
    return found + f"{resolved} ({version}){_imports(modules)}"


def _code(modules: tuple[str, ...]) -> str:
    imports = f"import {', '.join(modules)}; " if modules else ""
    return (
        f"import sys; {imports}"
        f"print('{_PROBE}', sys.implementation.name, '%d.%d.%d' % sys.version_info[:3])"
    )


def _version(stdout: str) -> str | None:
    found = re.search(rf"^{_PROBE} (\S+) (3\.\d+\.\d+)$", stdout, re.MULTILINE)
    if not found:
        return None
    return f"{'Python' if found[1] == 'cpython' else found[1]} {found[2]}"


def _imports(modules: tuple[str, ...]) -> str:
    return f" imports {', '.join(modules)}" if modules else ""


def _check_uv(
    workspace: Path, command: train_command.TrainCommand, modules: tuple[str, ...], cwd: Path
) -> str:
    """`uv run` must find the workspace's synced environment and run it with no sync and no
    network, as it will in the sandbox."""
    venv = Path(command.env["UV_PROJECT_ENVIRONMENT"])
    if not Path(command.python).exists():
        raise ValueError(
            f"uv's project environment {venv} has no Python; run `uv sync` in {workspace} first "
            "(autoresearch runs it as it is: no sync, no network)"
        )
    env = {**os.environ, **command.env, **_NO_BYTECODE}
    argv = train_command.probe_argv(command, _code(modules))
    try:
        returncode, stdout, stderr = _probe(argv, cwd=cwd, env=env)
    except OSError as err:
        raise ValueError(f"`{shlex.join(argv[:3])}` does not run: {err}") from None
    version = _version(stdout) if returncode == 0 else None
    if not version:
        last = (stderr.strip().splitlines() or [f"exit code {returncode}"])[-1]
        raise ValueError(
            f"`uv run python` in {workspace} (environment {venv}, no sync, offline) did not "
            f"start Python{_imports(modules)} ({last}); run `uv sync` there, then try again"
        )
    return f"uv runs {venv} ({version}) without syncing{_imports(modules)}"


def check_data(workspace: Path, cfg: Config) -> str:
    return task.ensure_data(workspace, cfg)


def check_metric(workspace: Path, cfg: Config) -> str:
    """Where the metric comes from, and what that means for trusting it."""
    if not self_reported(cfg):
        return source_note(cfg) + " (trusted: the labels never reach train.py)"
    return (
        f"{source_note(cfg)}. So it is only as trustworthy as train.py: it reads the evaluation's "
        "data (readonly_paths, read-only) and can print any number or change what it evaluates "
        "(prepare.py stays read-only in the sandbox and is checked after each run, but train.py "
        "calls it). Runs, status, report.md and results.tsv mark the metric self-reported; "
        "review the best train.py before you believe its score"
    )


def check_agent(workspace: Path, cfg: Config) -> str:
    """The configured agent answers a tiny request (auto: says which one it picked)."""
    from autoresearch.agents.base import AgentError
    from autoresearch.agents.command import CommandAgent
    from autoresearch.agents.factory import build
    from autoresearch.agents.sandboxed import check_cli

    try:
        agent, notice = build(cfg.agent, workspace)
        answer = (
            check_cli(agent, workspace, cfg) if isinstance(agent, CommandAgent) else agent.check()
        )
    except AgentError as err:
        raise ValueError(str(err)) from None
    return f"{notice}; {answer}" if notice else answer


def agent_checks(cfg: Config) -> list[tuple[str, Callable[[Path, Config], str]]]:
    """The agent's check, and the strategist's where it has an agent of its own."""
    from autoresearch.loop.strategist import has_own_agent

    own = [("strategist", check_strategist)] if has_own_agent(cfg) else []
    return [("agent", check_agent), *own]


def check_strategist(workspace: Path, cfg: Config) -> str:
    """The strategist's own agent answers a tiny request."""
    from autoresearch.agents.base import AgentError
    from autoresearch.loop import strategist

    try:
        answer = strategist.build(cfg, workspace, None).check()
    except AgentError as err:
        raise ValueError(str(err)) from None
    return f"{strategist.describe(cfg)}; {answer}"


# A check that runs what an earlier one found broken would only repeat its failure as other advice.
NEEDS = {"sandbox": "interpreter"}

CHECKS: list[tuple[str, Callable[[Path, Config], str]]] = [
    ("workspace", check_files),
    ("interpreter", check_interpreter),
    ("data", check_data),
    ("metric", check_metric),
    ("sandbox", check_sandbox),
]


def _checks(workspace: Path, cfg: Config, extra):
    """Each check's result, in order, computed only as far as it is consumed (a check may give
    several lines: the sandbox's, one per way out tried)."""
    failed = set()
    for name, fn in [*CHECKS, *extra]:
        if NEEDS.get(name) in failed:
            yield Check(name, False, f"not checked: it needs a working {NEEDS[name]} (above)")
            continue
        try:
            found = fn(workspace, cfg)
        except (ValueError, task.TaskError) as err:
            failed.add(name)
            yield Check(name, False, str(err))
            continue
        yield from found if isinstance(found, list) else [Check(name, True, found)]


def run_checks(workspace: Path, cfg: Config, extra=()) -> list[Check]:
    """Every check, in order; each gives one line."""
    return list(_checks(workspace, cfg, extra))


def first_failure(workspace: Path, cfg: Config, extra=()) -> Check | None:
    """Stops at the first failing check (for commands that are about to train)."""
    return next((check for check in _checks(workspace, cfg, extra) if not check.ok), None)
