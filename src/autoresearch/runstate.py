"""Who owns a run right now: a lock against two orchestrators, and the in-flight training
process, so that a resume after SIGKILL can end what the dead orchestrator left running."""

from __future__ import annotations

import fcntl
import os
import signal

import psutil

from autoresearch.store import Store


class RunBusy(Exception):
    """Another orchestrator holds this run."""


class RunLock:
    def __init__(self, store: Store):
        self.store, self.file = store, None

    def __enter__(self) -> RunLock:
        self.file = open(self.store.dir / "lock", "w")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.close()
            pid = self.store.get("pid")
            raise RunBusy(f"run {self.store.run_id} is already running (pid {pid})") from None
        self.store.set(pid=os.getpid())
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


def mark_inflight(store: Store, iteration: int | None, pid: int | None = None) -> None:
    """Remember the training process group of the iteration in flight (None: nothing in flight)."""
    if iteration is None:
        store.set(inflight=None)
        return
    try:
        created = psutil.Process(pid).create_time()
    except psutil.Error:
        created = None
    store.set(inflight={"iteration": iteration, "pid": pid, "created": created})


def kill_leftover(store: Store) -> int | None:
    """SIGKILL the process group a killed orchestrator left training. Returns its pid, if any."""
    inflight = store.get("inflight")
    if not inflight or not inflight.get("pid"):
        return None
    pid = inflight["pid"]
    try:
        if psutil.Process(pid).create_time() != inflight.get("created"):
            return None  # the pid now belongs to someone else
        os.killpg(pid, signal.SIGKILL)
    except (psutil.Error, ProcessLookupError, PermissionError):
        return None
    finally:
        store.set(inflight=None)
    return pid


def state(store: Store) -> str:
    """running, finished or interrupted; a `running` run whose orchestrator died is interrupted."""
    saved = store.get("state", "interrupted")
    if saved != "running":
        return saved
    try:
        with open(store.dir / "lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(f, fcntl.LOCK_UN)
        return "interrupted"  # nobody holds the lock
    except BlockingIOError:
        return "running"
