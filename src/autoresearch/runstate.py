"""Who owns a run right now: a lock against two orchestrators, and the in-flight training
process, so that a resume after SIGKILL can end what the dead orchestrator left running."""

from __future__ import annotations

import fcntl
import os
import signal
from contextlib import contextmanager

import psutil

from autoresearch.store import Store

# Set in the environment of every process a run starts (agents, training and what they start),
# so that a resume finds what a killed orchestrator left running: a CLI agent still thinking too.
RUN_ENV = "AUTORESEARCH_RUN"


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


@contextmanager
def tag_processes(store: Store):
    """While inside, every process this one starts carries RUN_ENV naming this run."""
    saved = os.environ.get(RUN_ENV)
    os.environ[RUN_ENV] = str(store.dir.resolve())
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(RUN_ENV, None)
        else:
            os.environ[RUN_ENV] = saved


def kill_leftover(store: Store) -> int | None:
    """SIGKILL the process group a killed orchestrator left training, and any other process of
    this run still alive (an agent it was waiting for). Returns the training pid, if any."""
    pid = _kill_training(store)
    tag = str(store.dir.resolve())
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            if proc.environ().get(RUN_ENV) == tag:
                proc.kill()
        except psutil.Error:
            pass  # gone, a zombie, or someone else's
    return pid


def _kill_training(store: Store) -> int | None:
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
    try:  # opened read-only, not created: reading a run's state writes nothing
        with open(store.dir / "lock", "rb") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(f, fcntl.LOCK_UN)
        return "interrupted"  # nobody holds the lock
    except FileNotFoundError:
        return "interrupted"  # nobody ever took it
    except BlockingIOError:
        return "running"
