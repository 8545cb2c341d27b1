"""Run train.py under a hard budget: own process group, SIGKILL at budget + grace, capped log,
a minimal environment, optional bubblewrap sandbox and memory/process limits; no process of it
outlives the run."""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from autoresearch.core.logs import tail_lines
from autoresearch.store.layout import PREDICTIONS_NAME
from autoresearch.training.capped_log import CappedLog
from autoresearch.training.limits import (
    Enforcer,
    FolderWatch,
    Limits,
    clear_folder,
    disk_reason,
    memory_reason,
    open_up,
    process_reason,
)
from autoresearch.training.memory import TreeMemory

HOME_NAME = ".home"  # train.py's HOME, inside its experiment directory
POLL_SECS = 0.1
# train.py's environment is built from this allowlist, not from the orchestrator's minus a regex.
ALLOWED_ENV = re.compile(
    r"PATH|LANG|LANGUAGE|TZ|TERM|LD_LIBRARY_PATH|LC_\w+|CUDA_\w+|NVIDIA_\w+|PYTORCH_\w+|NCCL_\w+"
    r"|OMP_NUM_THREADS|MKL_NUM_THREADS|OPENBLAS_\w+|NUMEXPR_NUM_THREADS|VECLIB_MAXIMUM_THREADS"
    r"|AUTORESEARCH_RUN"
)
EXPERIMENT_ENV = "AUTORESEARCH_EXPERIMENT"  # marks every process of one training run
SEED_ENV = "AUTORESEARCH_SEED"  # the training run's seed (prepare.seed() returns it)
# The thread counts of OpenMP, MKL, OpenBLAS, numexpr and Accelerate (torch's come from OpenMP's):
# set to [resources] threads so that experiments sharing a node never oversubscribe its cores.
THREAD_ENV = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)
# How a training killed by SIGXFSZ (a file past RLIMIT_FSIZE) ends: itself, or its shell or bwrap
XFSZ = (-signal.SIGXFSZ, 128 + signal.SIGXFSZ)
WRAPPER_PROCESSES = 2  # bwrap and its PID-namespace init, when sandboxed
PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1


@dataclass
class RunResult:
    """How one training process ended."""

    exit_code: int | None  # None when killed
    killed: bool
    kill_reason: str | None
    train_seconds: float  # process start to exit (or kill)
    peak_memory_mb: float
    log_path: Path
    predictions_path: Path
    limit_reason: str | None = None  # a memory, process or disk limit ended it
    log_error: str | None = None  # the log could not be written whole (a full disk): why

    def error_tail(self, lines: int = 1) -> str:
        """The last non-empty lines of the log, for a one-line crash reason."""
        return " | ".join(line.strip() for line in tail_lines(self.log_path, lines))


def training_env(
    budget_secs: float,
    workdir: Path,
    extra: dict[str, str] | None = None,
    passthrough: list[str] | tuple[str, ...] = (),
    seed: int = 0,
) -> dict[str, str]:
    """A minimal environment: the allowlisted variables, what the user passes through, HOME in
    the experiment directory, and what train.py needs to know."""
    env = {k: v for k, v in os.environ.items() if ALLOWED_ENV.fullmatch(k) or k in passthrough}
    env.update(extra or {})
    env["HOME"] = str(workdir / HOME_NAME)
    env["TRAINING_BUDGET_SECS"] = f"{budget_secs:g}"
    env[SEED_ENV] = str(seed)
    env["AUTORESEARCH_PREDICTIONS"] = str(workdir / PREDICTIONS_NAME)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no bytecode is left for a later experiment to run
    return env


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


def _kill_all(pgid: int, seen: dict[int, psutil.Process]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    for p in seen.values():  # descendants that left the group (setsid) too
        with contextlib.suppress(psutil.Error):
            p.kill()


def _subreaper(on: bool) -> None:
    """While training runs, orphans of its tree (double-forked daemons) become our children, so
    we find and reap them; outside it (an agent's leftovers) they go to init as usual."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)


def _child_setup(enforcer: Enforcer, die_with_parent: bool) -> Callable[[], None]:
    """In the child, before exec: the limits, and (die_with_parent) SIGKILL when the process
    that started it dies: a Ray worker killed mid-run, where no `finally` of ours runs and no
    later start of the orchestrator's looks. (Here a dead orchestrator's training is found and
    killed by the next start: runstate.kill_leftover.)"""

    def setup() -> None:
        enforcer.preexec()
        if die_with_parent:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    return setup


def _kill_strays(token: str, seen: dict[int, psutil.Process]) -> None:
    """Kill and reap every descendant of ours that belongs to this training run."""
    try:
        mine = psutil.Process().children(recursive=True)
    except psutil.Error:
        return
    for p in mine:
        try:
            if p.pid in seen or p.environ().get(EXPERIMENT_ENV) == token:
                p.kill()
                if p.ppid() == os.getpid():
                    os.waitpid(p.pid, 0)
        except (psutil.Error, ChildProcessError):
            pass


def run_training(
    python: str,
    workdir: Path,
    budget_secs: float,
    grace_secs: float,
    log_path: Path,
    max_log_bytes: int = 2_000_000,
    env: dict[str, str] | None = None,
    wrap: Callable[[list[str]], list[str]] | None = None,
    limits: Limits | None = None,
    script: str = "train.py",
    on_start=None,
    command: list[str] | None = None,
    die_with_parent: bool = False,
    keep: tuple[str, ...] | None = None,
) -> RunResult:
    """Run `python script` (or the command line `command`) in workdir; SIGKILL its whole process
    tree at budget + grace.

    env: the process's whole environment (default: training_env()); wrap: turns the command
    line into a sandboxed one; limits: memory, process-count and disk limits for the whole tree
    (disk: what it writes in workdir); keep: once the tree is dead, all that workdir holds but
    these names and the predictions is removed (what train.py wrote may fill the disk that the
    log and the records need); None: nothing is removed."""
    workdir = workdir.absolute()
    predictions = workdir / PREDICTIONS_NAME
    predictions.unlink(missing_ok=True)
    env = dict(env if env is not None else training_env(budget_secs, workdir))
    Path(env.get("HOME", workdir / HOME_NAME)).mkdir(exist_ok=True)
    token = env[EXPERIMENT_ENV] = uuid.uuid4().hex
    limits = limits or Limits(None, None)
    enforcer = Enforcer(limits)
    disk = FolderWatch(workdir, limits.disk_mb) if limits.disk_mb else None
    _subreaper(True)
    argv = list(command) if command else [python, script]
    started = time.time()
    env["AUTORESEARCH_START_TIME"] = repr(started)
    try:
        proc = subprocess.Popen(
            wrap(argv) if wrap else argv,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_child_setup(enforcer, die_with_parent),
        )
    except BaseException:
        _subreaper(False)
        enforcer.close()
        raise
    log = CappedLog(proc.stdout, log_path, max_log_bytes)
    deadline = started + budget_secs + grace_secs
    overhead = WRAPPER_PROCESSES if wrap else 0
    seen: dict[int, psutil.Process] = {}
    memory = TreeMemory()
    killed, limit_reason = False, None
    try:
        if on_start:
            on_start(proc.pid)
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            tree = _tree(root)
            for p in tree:
                seen.setdefault(p.pid, p)
            used = memory.measure(tree)  # shared pages once: PSS, not the sum of RSS
            if limits.memory_mb and used > limits.memory_mb * 2**20:
                limit_reason = memory_reason(limits)
            elif limits.processes and len(tree) - overhead > limits.processes:
                limit_reason = process_reason(limits)
            elif disk and disk.over():
                limit_reason = disk_reason(limits)
            if limit_reason:
                break
            if time.time() >= deadline:
                killed = True
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(POLL_SECS)
    except psutil.NoSuchProcess:
        pass
    finally:
        # Always: stragglers (a child left sleeping, a daemon, or Ctrl-C in the orchestrator).
        _kill_all(proc.pid, seen)
        proc.wait()
        _kill_strays(token, seen)
        _subreaper(False)
        train_seconds = time.time() - started
        log.join(timeout=5)  # a stray we could not see may still hold the pipe: never wait on it
        failed = not killed and proc.returncode != 0
        tail = log.ending() if log.error else "".join(tail_lines(log_path, 1)).strip()
        limit_reason = enforcer.exceeded(failed, tail) or limit_reason
        enforcer.close()
        if disk or keep is not None:
            open_up(workdir)  # the tree is dead: nothing can swap a folder for a link now
        if disk and not limit_reason and (proc.returncode in XFSZ or disk.over(now=True)):
            limit_reason = disk_reason(limits)  # a file past RLIMIT_FSIZE, or after the last look
        if keep is not None:
            clear_folder(workdir, (*keep, PREDICTIONS_NAME))
        log_error = log.repair()
    limit = f"{budget_secs:g}s budget + {grace_secs:g}s grace"
    return RunResult(
        exit_code=None if killed else proc.returncode,
        killed=killed,
        kill_reason=f"killed at {limit} (SIGKILL to the process group)" if killed else None,
        train_seconds=train_seconds,
        peak_memory_mb=round(memory.peak / 2**20, 1),
        log_path=log_path,
        predictions_path=predictions,
        limit_reason=limit_reason,
        log_error=log_error,
    )
