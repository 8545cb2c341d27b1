"""Who owns a run right now: locks against two orchestrators (one per workspace, one per run),
the in-flight training process (so that a start after SIGKILL can end what the dead orchestrator
left running), and the signals that stop an orchestrator the way Ctrl-C does."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import psutil

from autoresearch.core.records import INTERRUPTED, RUNNING
from autoresearch.store.store import Store, StoreError, list_runs
from autoresearch.store.workspace import STATE_DIR

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


class WorkspaceLock:
    """One `autoresearch run` per workspace at a time: an flock on .autoresearch/lock, held from
    before the run is chosen until the command ends, the file naming its holder. The kernel lets
    go when the process dies, however it dies: a SIGKILLed orchestrator never blocks the next."""

    def __init__(self, workspace: Path):
        self.workspace, self.path, self.file = workspace, workspace / STATE_DIR / "lock", None
        self.since = time.time()

    def take(self) -> WorkspaceLock:
        """The lock, or RunBusy naming the run that holds it."""
        self.path.parent.mkdir(exist_ok=True)
        self.file = open(self.path, "a+", encoding="utf-8")  # "w" would erase the holder's name
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            text = self.file.read()
            self.file.close()
            raise RunBusy(self._busy(text)) from None
        self.name(None)
        return self

    def name(self, run_id: str | None) -> None:
        """Say which run it holds the workspace for, once that is known."""
        self.file.seek(0)
        self.file.truncate()
        self.file.write(json.dumps({"run": run_id, "pid": os.getpid(), "since": self.since}))
        self.file.flush()

    def release(self) -> None:
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()

    def _busy(self, text: str) -> str:
        try:
            holder = json.loads(text)
            run, pid = holder["run"], int(holder["pid"])
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder["since"]))
        except (ValueError, KeyError, TypeError, OverflowError, OSError):
            # caught between opening the file and writing it: a start just began
            return f"another run is starting in {self.workspace}; one run per workspace at a time"
        return (
            f"run {run or '(being chosen)'} is already running in {self.workspace} (pid {pid}, "
            f"since {since}); one run per workspace at a time: wait for it to end, or stop it "
            f"(Ctrl-C in its terminal, or kill {pid})"
        )


def created(pid: int) -> float | None:
    """When process pid started (with the pid, it names the process even after the pid is reused)."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


@contextmanager
def tag_processes(folder: Path):
    """While inside, every process this one starts carries RUN_ENV naming folder (its run's or
    its baseline's)."""
    saved = os.environ.get(RUN_ENV)
    os.environ[RUN_ENV] = run_tag(folder)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(RUN_ENV, None)
        else:
            os.environ[RUN_ENV] = saved


def kill_leftover(store: Store) -> list[int]:
    """SIGKILL the process groups a killed orchestrator left training, and any other process of
    this run still alive (an agent it was waiting for). Returns the training pids killed."""
    pids = _kill_training(store)
    kill_tagged(run_tag(store.dir))
    return pids


def run_tag(folder: Path) -> str:
    """RUN_ENV's value for the processes of the run (or baseline) in folder."""
    return str(folder.resolve())


def kill_tagged(tag: str) -> int:
    """SIGKILL every process on this machine (but this one) whose environment says RUN_ENV=tag;
    returns how many."""
    killed = 0
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            if proc.environ().get(RUN_ENV) == tag:
                proc.kill()
                killed += 1
        except psutil.Error:
            pass  # gone, a zombie, or someone else's
    return killed


def _kill_training(store: Store) -> list[int]:
    """SIGKILL the process groups of the training runs the store says are under way (what a
    killed orchestrator left), and forget them; returns the pids killed."""
    killed = []
    for n, k, pid, started in store.training():
        store.trained(n, k)
        if pid is None or created(pid) != started:
            continue  # on another machine (Ray's: its sweep), gone, or the pid reused
        try:
            os.killpg(pid, signal.SIGKILL)
            killed.append(pid)
        except (ProcessLookupError, PermissionError):
            pass
    return killed


def held(folder: Path) -> bool:
    """Whether a live orchestrator holds folder's lock (a run's, or a baseline's)."""
    try:
        with open(folder / "lock", "rb") as f:  # read-only, never created: reading writes nothing
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(f, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False  # the folder is gone


@contextmanager
def hold(folder: Path):
    """Holds folder's lock while inside (a baseline's folder: see kill_leftovers)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def state(store: Store) -> str:
    """running, finished, interrupted or stopped; a `running` run whose orchestrator died is
    interrupted."""
    saved = store.get("state", INTERRUPTED)
    if saved != RUNNING:
        return saved
    return RUNNING if held(store.dir) else INTERRUPTED


def kill_leftovers(workspace: Path) -> list[int]:
    """At any start: SIGKILL what dead orchestrators of this workspace left running, the training
    process group of each run that died mid-run and every process tagged with a run or baseline
    folder that no live orchestrator holds. Returns the pids killed."""
    killed = []
    for folder in list_runs(workspace):
        try:
            store = Store(folder)
        except StoreError:
            continue  # a damaged store is reported where it is used, not here
        try:
            if store.get("state") == RUNNING and not held(folder):
                killed += _kill_training(store)
        finally:
            store.close()
    root = str((workspace / STATE_DIR).resolve()) + os.sep
    free: dict[str, bool] = {}
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            tag = proc.environ().get(RUN_ENV, "")
            if tag.startswith(root) and free.setdefault(tag, not held(Path(tag))):
                proc.kill()
                killed.append(proc.pid)
        except psutil.Error:
            pass  # gone, a zombie, or someone else's
    return killed


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP: handled exactly like Ctrl-C (a KeyboardInterrupt), remembering which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def signal_of(interrupt: KeyboardInterrupt) -> int:
    return getattr(interrupt, "signum", signal.SIGINT)


def describe(signum: int) -> str:
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


@contextmanager
def stop_on_signals():
    """While inside, SIGTERM and SIGHUP raise Stopped (once: a second one during the clean-up
    is ignored, so that what is done still gets recorded). A signal ignored from the start stays
    ignored: `nohup autoresearch run` survives a closed terminal."""
    raised = []

    def handler(signum, frame):
        if not raised:
            raised.append(signum)
            raise Stopped(signum)

    heeded = [
        sig for sig in (signal.SIGTERM, signal.SIGHUP) if signal.getsignal(sig) != signal.SIG_IGN
    ]
    saved = {sig: signal.signal(sig, handler) for sig in heeded}
    try:
        yield
    finally:
        for sig, previous in saved.items():
            signal.signal(sig, previous)
