"""One experiment: train a workspace copy under the budget, then score it in this process."""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from pathlib import Path

from autoresearch import task
from autoresearch.config import Config
from autoresearch.runner.local import LOG_NAME, run_training

OK, CRASH, TIMEOUT = "ok", "crash", "timeout"


@dataclass
class Outcome:
    status: str  # ok | crash | timeout
    value: float | None
    reason: str | None
    train_seconds: float
    wall_seconds: float
    peak_memory_mb: float
    log_path: Path


def _exit_reason(code: int, tail: str) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        head = f"killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
    else:
        head = f"exit code {code}"
    return f"{head}: {tail}" if tail else head


def python_path(workspace: Path, cfg: Config) -> str:
    """The training interpreter; a path with a slash is taken relative to the workspace."""
    if "/" in cfg.python:
        return str((workspace / Path(cfg.python).expanduser()).absolute())
    return cfg.python


def run_experiment(workspace: Path, cfg: Config, workdir: Path, on_start=None) -> Outcome:
    """Train workdir/train.py (workdir is already a copy of the workspace) and score it."""
    started = time.time()
    workdir = workdir.absolute()
    result = run_training(
        python_path(workspace, cfg),
        workdir,
        cfg.budget_secs,
        cfg.grace_secs,
        workdir / LOG_NAME,
        max_log_bytes=cfg.max_log_bytes,
        data_dir=task.data_dir(workspace, cfg),
        on_start=on_start,
    )
    value, reason, status = None, None, OK
    if result.killed:
        status, reason = TIMEOUT, result.kill_reason
    elif result.exit_code != 0:
        status, reason = CRASH, _exit_reason(result.exit_code, result.error_tail())
    else:
        value, reason = task.score(workspace, cfg, result.predictions_path)
        if value is None:
            status = CRASH
    return Outcome(
        status=status,
        value=value,
        reason=reason,
        train_seconds=round(result.train_seconds, 3),
        wall_seconds=round(time.time() - started, 3),
        peak_memory_mb=result.peak_memory_mb,
        log_path=result.log_path,
    )
