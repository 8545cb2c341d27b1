"""Run train.py under a hard budget: own process group, SIGKILL at budget + grace, capped log."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

PREDICTIONS_NAME = "predictions.npy"
LOG_NAME = "train.log"
SECRET_NAME = re.compile(r"(API_?KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL)", re.IGNORECASE)
TAIL_BYTES = 16_384
POLL_SECS = 0.1


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

    def error_tail(self, lines: int = 1) -> str:
        """The last non-empty lines of the log, for a one-line crash reason."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - TAIL_BYTES))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        kept = [line.strip() for line in text.splitlines() if line.strip()]
        return " | ".join(kept[-lines:])


def training_env(budget_secs: float, predictions: Path, data_dir: str | None) -> dict[str, str]:
    """The orchestrator's environment without secrets, plus what train.py needs."""
    env = {k: v for k, v in os.environ.items() if not SECRET_NAME.search(k)}
    env["TRAINING_BUDGET_SECS"] = f"{budget_secs:g}"
    env["AUTORESEARCH_PREDICTIONS"] = str(predictions)
    env["PYTHONUNBUFFERED"] = "1"
    if data_dir:
        env["AUTORESEARCH_DATA_DIR"] = str(Path(data_dir).expanduser())
    return env


class _CappedLog:
    """Copies a pipe to a file: the first bytes up to the cap, then only the tail is kept."""

    def __init__(self, stream, path: Path, cap: int):
        self.stream, self.path, self.head_cap = stream, path, max(0, cap - TAIL_BYTES)
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        written, dropped, tail = 0, 0, bytearray()
        with open(self.path, "wb") as out:
            for chunk in iter(lambda: self.stream.read1(65536), b""):
                if written < self.head_cap:
                    part = chunk[: self.head_cap - written]
                    out.write(part)
                    out.flush()
                    written += len(part)
                    chunk = chunk[len(part) :]
                tail += chunk
                if len(tail) > TAIL_BYTES:
                    dropped += len(tail) - TAIL_BYTES
                    del tail[: len(tail) - TAIL_BYTES]
            if dropped:
                out.write(f"\n[... {dropped} bytes of output dropped: log capped ...]\n".encode())
            out.write(tail)

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


def _kill_all(pgid: int, seen: dict[int, psutil.Process]) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for p in seen.values():  # descendants that left the group (setsid) too
        try:
            p.kill()
        except psutil.Error:
            pass


def run_training(
    python: str,
    workdir: Path,
    budget_secs: float,
    grace_secs: float,
    log_path: Path,
    max_log_bytes: int = 2_000_000,
    data_dir: str | None = None,
    script: str = "train.py",
    on_start=None,
) -> RunResult:
    """Run `python script` in workdir; SIGKILL its whole process tree at budget + grace."""
    workdir = workdir.absolute()
    predictions = workdir / PREDICTIONS_NAME
    predictions.unlink(missing_ok=True)
    env = training_env(budget_secs, predictions, data_dir)
    started = time.time()
    env["AUTORESEARCH_START_TIME"] = repr(started)
    proc = subprocess.Popen(
        [python, script],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log = _CappedLog(proc.stdout, log_path, max_log_bytes)
    deadline = started + budget_secs + grace_secs
    seen: dict[int, psutil.Process] = {}
    peak = 0.0
    killed = False
    try:
        if on_start:
            on_start(proc.pid)
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            rss = 0
            for p in _tree(root):
                seen.setdefault(p.pid, p)
                try:
                    rss += p.memory_info().rss
                except psutil.Error:
                    pass
            peak = max(peak, rss / 2**20)
            if time.time() >= deadline:
                killed = True
                break
            try:
                proc.wait(POLL_SECS)
            except subprocess.TimeoutExpired:
                pass
    except psutil.NoSuchProcess:
        pass
    finally:
        # Always: stragglers (a child left sleeping, or Ctrl-C in the orchestrator) die with it.
        _kill_all(proc.pid, seen)
        proc.wait()
        train_seconds = time.time() - started
        log.join(timeout=5)  # an escaped process may still hold the pipe: never wait on it
    limit = f"{budget_secs:g}s budget + {grace_secs:g}s grace"
    return RunResult(
        exit_code=None if killed else proc.returncode,
        killed=killed,
        kill_reason=f"killed at {limit} (SIGKILL to the process group)" if killed else None,
        train_seconds=train_seconds,
        peak_memory_mb=round(peak, 1),
        log_path=log_path,
        predictions_path=predictions,
    )
