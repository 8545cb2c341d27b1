"""The machine-readable state of a run: what `status --json` prints, and so what the report,
compare, export and the dashboard read."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from autoresearch.core.config import Config
from autoresearch.core.history import History, best_so_far
from autoresearch.core.log_metrics import self_reported
from autoresearch.core.noise import Noise, estimate, margin, scored
from autoresearch.core.records import CONFIRMING, RUNNING, TRAINING, Iteration, Strategy
from autoresearch.loop.strategist import describe, who
from autoresearch.store.layout import LOG_NAME
from autoresearch.store.runstate import state
from autoresearch.store.store import Store
from autoresearch.views import model as views
from autoresearch.views.verdicts import view as verdicts


def live_phase(store: Store, run_state: str) -> dict | None:
    """What a running loop is doing now (live.py), with the seconds since it began; None when
    the run is not running (an entry a killed orchestrator left behind is stale)."""
    live = store.live() if run_state == RUNNING else None
    if not live:
        return None
    return {**live, "elapsed_secs": round(max(0.0, time.time() - live["started_at"]), 1)}


def live_log(store: Store, live: dict | None) -> Path | None:
    """The training log of the run in flight (a confirmation run's own), if one is training."""
    if not live or live["phase"] not in (TRAINING, CONFIRMING):
        return None
    return store.run_dir(live["iteration"], live.get("run", 1) - 1) / LOG_NAME


@dataclass(frozen=True)
class Pace:
    """What an ETA is computed from: the iterations recorded, the mean wall time of a recorded
    experiment (the baseline's before any), of a recorded run (None before any)."""

    recorded: int
    per_iteration: float
    per_run: float | None


def pace_of(history: list[Iteration]) -> Pace | None:
    if not history:
        return None
    facts = History.of(history)
    (walls, done), (run_walls, runs) = facts.walls, facts.runs_walls
    per_iteration = float(walls / done) if done else history[0].wall_seconds  # their mean
    return Pace(len(facts), per_iteration, float(run_walls / runs) if runs else None)


def eta_secs(history: list[Iteration], planned: int, live: dict | None) -> float | None:
    """Seconds until the planned iterations are done. The iteration in progress: while it
    trains, the runs it still has to train (a candidate being confirmed needs 1 + confirm_runs)
    at the mean wall time of a recorded run; the iterations after it at the mean wall time of
    the recorded experiments, their repeats included."""
    return eta_from(pace_of(history), planned, live)


def eta_from(pace: Pace | None, planned: int, live: dict | None) -> float | None:
    if pace is None:
        return None
    left = planned - (pace.recorded - 1)
    if left <= 0:
        return 0.0
    live = live or {}
    elapsed = live.get("elapsed_secs", 0.0)
    per_run = pace.per_run
    if live.get("phase") in (TRAINING, CONFIRMING) and live.get("runs") and per_run is not None:
        current = max(0.0, per_run - elapsed) + (live["runs"] - live.get("run", 1)) * per_run
    else:
        current = max(0.0, pace.per_iteration - elapsed)
    return round(current + (left - 1) * pace.per_iteration, 1)


def snapshot(store: Store) -> dict:
    """What `status --json` prints: the run's read model as JSON (the verdicts at the top)."""
    data = asdict(read(store))
    return {**data, **data.pop("verdicts")}


def read(store: Store) -> views.RunView:
    """The run's typed read model (views.py): one reader for every view of a run."""
    cfg = store.config()
    history = store.iterations()
    run_state = state(store)
    live = live_phase(store, run_state)
    planned = cfg.loop.iterations
    bests = best_so_far(history, cfg.better)
    best = bests[-1] if bests else None
    best_it = next(
        (it.iteration for it in history if it.kept and it.value == best),
        None,
    )
    strategies = store.strategies()
    costs = [it.usage.cost_usd for it in history]
    noise = estimate(history)
    thinking = [s.usage.cost_usd for s in strategies]
    extra = verdicts(store, cfg, history)  # promotions, ablation, suspicious keeps, machines
    return views.RunView(
        run=store.run_id,
        name=store.get("name"),
        state=run_state,
        stop_reason=store.get("stop_reason"),
        live=live,
        iterations_planned=planned,
        eta_secs=eta_secs(history, planned, live) if live else None,
        metric=views.Metric(cfg.metric, cfg.direction, cfg.metric_source, self_reported(cfg)),
        best=views.Best(best_it, best),
        cost_usd=_total(costs + thinking + [extra["machine_cost_usd"] or 0.0]),
        noise=views.Noise(noise.sigma, noise.runs),
        keep_needs=keep_needs(cfg, history, best_it, noise),
        train_seconds=round(sum(it.train_seconds for it in history), 3),
        repeat_seconds=round(sum(it.repeat_seconds for it in history), 3),
        iterations=[_entry(it) for it in history],
        strategist=views.Strategist(
            state="on" if who(cfg) else "off",
            detail=describe(cfg),
            cost_usd=_total(thinking),
            strategies=[_strategy(s) for s in strategies],
        ),
        origin=store.get("origin"),
        verdicts=extra,
    )


def keep_needs(cfg: Config, history: list[Iteration], best: int | None, noise: Noise) -> dict:
    """What the next keep must beat the best by: min_improvement, and with confirmation runs
    the noise margin for the mean of its 1 + confirm_runs runs against the best's (decide.py)."""
    runs = 1 + cfg.loop.confirm_runs
    needed = cfg.loop.min_improvement
    incumbent = next((it for it in history if it.iteration == best), None)
    if cfg.loop.confirm_runs and incumbent is not None:
        needed = max(needed, margin(noise, runs, max(1, len(scored(incumbent.runs)))))
    return {"margin": round(needed, 6), "runs": runs}


def _total(costs: list[float | None]) -> float | None:
    return None if None in costs else round(sum(costs), 6)


def _strategy(s: Strategy) -> views.StrategyEntry:
    return views.StrategyEntry(
        version=s.version,
        after_iteration=s.after_iteration,
        trigger=s.trigger,
        text=s.text,
        reasoning=s.reasoning,
        reason=s.reason,
        agent=s.agent,
        model=s.model,
        cost_usd=s.usage.cost_usd,
        tokens_in=s.usage.tokens_in,
        tokens_out=s.usage.tokens_out,
        seconds=s.seconds,
        commit=s.commit,
    )


def _entry(it: Iteration) -> views.Entry:
    return views.Entry(
        iteration=it.iteration,
        status=it.status,
        value=it.value,
        values=[r.value for r in it.runs],
        seeds=[r.seed for r in it.runs],
        metrics=it.metrics,
        reason=it.reason,
        description=it.description,
        explanation=it.explanation,
        commit=it.commit,
        cost_usd=it.usage.cost_usd,
        tokens_in=it.usage.tokens_in,
        tokens_out=it.usage.tokens_out,
        agent_seconds=it.agent_seconds,
        train_seconds=it.train_seconds,
        wall_seconds=it.wall_seconds,
        agent=it.agent,
        model=it.model,
        strategy=it.strategy,
        parent=it.parent,
        second_parent=it.second_parent,
        repairs=it.repairs,
        peak_memory_mb=it.peak_memory_mb,
    )
