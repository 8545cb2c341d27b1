"""Reading a workspace's run stores for the dashboard: read-only, while runs write them."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from autoresearch.store.layout import is_run, runs_dir
from autoresearch.store.runstate import state
from autoresearch.store.store import Store, StoreError, list_runs
from autoresearch.views.snapshot import live_log, live_phase, snapshot

LOG_BYTES = 65536  # the end of an iteration's train.log that the page shows
LIVE_LOG_LINES = 12


class NotFound(Exception):
    """No such run or iteration (HTTP 404)."""


@contextmanager
def opened(workspace: Path, run_id: str):
    """The run's store, read-only (no lock taken, nothing written), closed afterwards."""
    folder = runs_dir(workspace) / run_id
    if "/" in run_id or run_id.startswith(".") or not is_run(folder):
        raise NotFound(f"no run '{run_id}' in {workspace}")
    store = Store(folder, readonly=True)
    try:
        yield store
    finally:
        store.close()


def runs(workspace: Path) -> list[dict]:
    """Every run, newest first: its snapshot without the iterations (their count instead); a
    store that cannot be read (damaged, or still being created) is listed with the reason."""
    found = []
    for folder in reversed(list_runs(workspace)):
        try:
            with opened(workspace, folder.name) as store:
                snap = snapshot(store)
        except StoreError as err:
            found.append({"run": folder.name, "error": str(err)})
            continue
        its = snap.pop("iterations")
        snap["recorded"] = len(its)
        found.append(snap)
    return found


def run(workspace: Path, run_id: str) -> dict:
    with opened(workspace, run_id) as store:
        return snapshot(store)


def tail(path: Path, size: int = LOG_BYTES) -> tuple[str, bool]:
    """The end of a log (text, whether the start was left out)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            length = f.tell()
            f.seek(max(0, length - size))
            data = f.read()
    except OSError:
        return "", False
    return data.decode("utf-8", errors="replace"), length > size


def iteration(workspace: Path, run_id: str, n: int) -> dict:
    """One iteration as `status --json` shows it, with its diff, log and the rest of its record."""
    with opened(workspace, run_id) as store:
        snap = snapshot(store)
        entry = next((e for e in snap["iterations"] if e["iteration"] == n), None)
        it = store.iteration(n) if entry else None
        if it is None:
            raise NotFound(f"run {run_id} has no iteration {n}")
        log, cut = tail(Path(it.log_path)) if it.log_path else ("", False)
        return {
            **entry,
            "run": run_id,
            "metric": snap["metric"],
            "parent": it.parent,
            "diff": it.diff,
            "log": log,
            "log_truncated": cut,
            "peak_memory_mb": it.peak_memory_mb,
            "tokens_cached": it.usage.tokens_cached,
            "started_at": it.started_at,
        }


def live(workspace: Path, run_id: str) -> dict:
    """What the run is doing now, cheaply (polled every second while a page is open): its state,
    how many iterations are recorded, the live phase and the end of the training log."""
    with opened(workspace, run_id) as store:
        run_state = state(store)
        phase = live_phase(store, run_state)
        log = []
        path = live_log(store, phase)
        if path is not None:
            text, _ = tail(path, 8192)
            log = [line for line in text.splitlines() if line.strip()][-LIVE_LOG_LINES:]
        return {
            "run": run_id,
            "state": run_state,
            "recorded": store.recorded(),
            "live": phase,
            "log": log,
        }
