"""Finding, starting and resuming runs, and the machine-readable state of one."""

from __future__ import annotations

from pathlib import Path

from autoresearch.config import Config, ConfigError
from autoresearch.context import best_so_far
from autoresearch.records import BASELINE, KEEP, Iteration
from autoresearch.runstate import RunBusy, state
from autoresearch.store import Store, list_runs, new_run_id, runs_dir

# Settings that must stay equal within a run: changing them would make its iterations incomparable.
FROZEN = ("metric", "direction", "budget_secs", "grace_secs")


def latest(workspace: Path, readonly: bool = False) -> Store | None:
    found = list_runs(workspace)
    return Store(found[-1], readonly) if found else None


def open_run(workspace: Path, run_id: str | None) -> Store:
    """A named run, or the latest one, opened read-only."""
    if run_id:
        path = runs_dir(workspace) / run_id
        if not (path / "run.db").is_file():
            known = ", ".join(p.name for p in list_runs(workspace)) or "none"
            raise ConfigError(f"no run '{run_id}' in {workspace}; runs: {known}")
        return Store(path, readonly=True)
    store = latest(workspace, readonly=True)
    if store is None:
        raise ConfigError(f"{workspace} has no runs yet; start one with `autoresearch run`")
    return store


def start_or_resume(workspace: Path, cfg: Config, new: bool) -> tuple[Store, Config, str]:
    """The run to work on, the settings it runs with, and one line saying which."""
    store = None if new else latest(workspace)
    if store is None:
        store = Store.create(runs_dir(workspace) / new_run_id(workspace), cfg.model_dump())
        store.set(state="running")
        return store, cfg, f"run {store.run_id}: new"
    if state(store) == "running":
        raise RunBusy(f"run {store.run_id} is already running (pid {store.get('pid')})")
    saved = store.config()
    changed = [k for k in FROZEN if getattr(saved, k) != getattr(cfg, k)]
    if changed:
        was = ", ".join(f"{k}={getattr(saved, k)}" for k in changed)
        raise ConfigError(
            f"run {store.run_id} was started with {was}; iterations of one run must be "
            "comparable, so pass --new to start another run with the new settings"
        )
    store.set(config=cfg.model_dump())
    done = len(store.iterations()) - 1
    return store, cfg, f"run {store.run_id}: resuming after iteration {done}"


def snapshot(store: Store) -> dict:
    """What `status --json` prints."""
    cfg = store.config()
    history = store.iterations()
    bests = best_so_far(history, cfg.better)
    best = bests[-1] if bests else None
    best_it = next(
        (it.iteration for it in history if it.status in (BASELINE, KEEP) and it.value == best),
        None,
    )
    costs = [it.usage.cost_usd for it in history]
    return {
        "run": store.run_id,
        "state": state(store),
        "stop_reason": store.get("stop_reason"),
        "metric": {"name": cfg.metric, "direction": cfg.direction},
        "best": {"iteration": best_it, "value": best},
        "cost_usd": None if None in costs else round(sum(costs), 6),
        "iterations": [_entry(it) for it in history],
    }


def _entry(it: Iteration) -> dict:
    return {
        "iteration": it.iteration,
        "status": it.status,
        "value": it.value,
        "reason": it.reason,
        "description": it.description,
        "explanation": it.explanation,
        "commit": it.commit,
        "cost_usd": it.usage.cost_usd,
        "tokens_in": it.usage.tokens_in,
        "tokens_out": it.usage.tokens_out,
        "agent_seconds": it.agent_seconds,
        "train_seconds": it.train_seconds,
        "wall_seconds": it.wall_seconds,
    }
