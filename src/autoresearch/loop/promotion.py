"""Promotion: a keep at a 5-minute budget is a claim about that budget. With `[promote]
budget_factor = k`, the run's best and its baseline are trained again at k times the budget,
`noise_runs` seeds each (the same seeds on both sides), and the gain is put to the loop's own
test (decide.py: the baseline as the incumbent, the noise measured on these runs). At the end of
a run, and after every `[promote] every` keeps when set; on a Ray cluster whose GPU types differ,
on another type than the run's own. Recorded in the store's promotions table."""

from __future__ import annotations

import time
from contextlib import contextmanager
from statistics import mean

from autoresearch.core.decide import decide
from autoresearch.core.history import History
from autoresearch.core.noise import estimate, scored
from autoresearch.core.records import BASELINE, FINISHED, KEEP, PROMOTING, Iteration, Promotion
from autoresearch.core.text import fmt, plural
from autoresearch.store.layout import PROMOTIONS, number
from autoresearch.store.verdict_store import promotions, record_promotion
from autoresearch.training.batch import Training, train_all
from autoresearch.training.ray import cluster

PROMOTION_SEED = 900_000  # promotion run k of either side: this + k


def choose_type(nodes: list[cluster.Node], resources) -> tuple[str, str]:
    """(the run's own GPU type, another type to promote on): the own is the type with room for
    the most experiments, the other the roomiest of the rest; "" where there is none (no GPUs
    asked for, no types known, or one type only)."""
    if not resources.gpus:
        return "", ""
    room: dict[str, int] = {}
    for node in nodes:
        if node.gpu_type and cluster.fits(node, resources):
            room[node.gpu_type] = room.get(node.gpu_type, 0) + cluster.fits(node, resources)
    ranked = sorted(room, key=lambda t: (-room[t], t))
    return (ranked[0] if ranked else ""), (ranked[1] if len(ranked) > 1 else "")


@contextmanager
def on_type(engine, gpu_type: str):
    """The Ray engine's training task asks for a node of this GPU type meanwhile."""
    if not gpu_type:
        yield
        return
    from autoresearch.training.ray import node

    res, saved = engine.trainer.cfg.resources, engine.task
    engine.task = engine.ray.remote(node.train).options(
        num_cpus=res.cpus, num_gpus=res.gpus, max_retries=0,
        resources={f"{cluster.ACCELERATOR}{gpu_type}": 0.001},
    )  # fmt: skip
    try:
        yield
    finally:
        engine.task = saved


def _where(loop) -> tuple[str, str]:
    """(the GPU type to promote on, the line that says why); ("", "") off a mixed Ray cluster."""
    ray = getattr(loop.engine, "ray", None)
    if ray is None:
        return "", ""
    own, other = choose_type(cluster.nodes(ray), loop.cfg.resources)
    return other, (f" on {other} (the run trained mostly on {own})" if other else "")


def promote(loop, history: list[Iteration]) -> Promotion | None:
    """Promote the run's best now, unless it was at this budget already or nothing is kept."""
    cfg, store = loop.cfg, loop.store
    factor = cfg.promote.budget_factor
    best = History.of(history, cfg.better).incumbent
    if not factor or best is None or best.status != KEEP or history[0].value is None:
        return None
    budget = round(cfg.budget_secs * factor, 3)
    if any(
        p.best_iteration == best.iteration and p.budget_secs == budget for p in promotions(store)
    ):
        return None
    gpu_type, where = _where(loop)
    n = cfg.loop.noise_runs
    loop.say(
        f"promotion: iteration {best.iteration} and the baseline at {budget:g}s "
        f"({factor:g}x the budget), {plural(n, 'seed')} each{where}"
    )
    loop.live.phase(PROMOTING, best.iteration, description=best.description, budget_secs=budget,
               grace_secs=cfg.grace_secs, runs=2 * n)  # fmt: skip
    folder = store.dir / PROMOTIONS / f"{number(best.iteration)}-x{factor:g}"
    trainings = []
    for k in range(n):  # interleaved: a machine that slows down slows both sides
        for side, code in (("best", best.train_py), ("baseline", None)):
            name = f"promote-{number(best.iteration)}-{side}-{k}"
            trainings.append(Training(name, code, PROMOTION_SEED + k, folder / f"{side}-{k}"))
    started = time.time()
    with on_type(loop.engine, gpu_type):
        runs = train_all(
            loop.trainer, loop.engine, budget, loop.workdirs.make, loop.fixed, trainings
        )
    promotion = judge(cfg, runs[0::2], runs[1::2], history)
    promotion.best_iteration, promotion.budget_secs, promotion.where = (
        best.iteration,
        budget,
        gpu_type,
    )
    promotion.after_iteration = max(it.iteration for it in history)
    promotion.seconds = round(sum(r.wall_seconds for r in runs), 3)
    record_promotion(store, promotion)
    loop.store.set(live=None)
    verdict = "holds" if promotion.holds else f"does not hold ({promotion.reason})"
    loop.say(
        f"promotion at {budget:g}s: iteration {best.iteration} {fmt(_mean(runs[0::2]))} vs the "
        f"baseline {fmt(_mean(runs[1::2]))}, gain {_signed(promotion.gain)}: {verdict} "
        f"({time.time() - started:.0f}s)"
    )
    return promotion


def judge(cfg, best_runs, baseline_runs, history: list[Iteration]) -> Promotion:
    """The loop's own test on the promoted runs: the baseline's mean as the incumbent, the noise
    measured on these runs (the run's own where they have no spread to measure)."""
    base = Iteration(0, BASELINE, value=_mean(baseline_runs), runs=baseline_runs)
    best = Iteration(1, KEEP, runs=best_runs)
    noise = estimate([base, best])
    if noise.sigma is None:
        noise = estimate(history)
    best_values = [r.value for r in best_runs]
    base_values = [r.value for r in baseline_runs]
    if base.value is None:
        return Promotion(
            0, 0.0, best_values, base_values, None, False, "the baseline scored nothing"
        )
    status, reason = decide(cfg, best_runs, base, noise)
    average = _mean(best_runs)
    gain = None if average is None else _sign(cfg) * (average - base.value)
    if status != KEEP and reason is None:
        reason = "its first run did not beat the baseline's mean"
    return Promotion(0, 0.0, best_values, base_values, gain, status == KEEP, reason)


def _mean(runs) -> float | None:
    values = scored(runs)
    return mean(values) if values else None


def _sign(cfg) -> int:
    return 1 if cfg.direction == "maximize" else -1


def _signed(value: float | None) -> str:
    return "none" if value is None else f"{value:+.4f}"


def promote_due(loop, history: list[Iteration]) -> None:
    """The hook before each proposal: promote the best after every `[promote] every` keeps."""
    every = loop.cfg.promote.every
    if not loop.cfg.promote.budget_factor or not every:
        return
    keeps = History.of(history, loop.cfg.better).statuses[KEEP]  # counted as they were recorded
    if keeps and keeps % every == 0:
        promote(loop, history)


def promote_at_end(loop, result) -> None:
    """The hook at the end of a run that finished (not one stopped or interrupted), unless its
    --until time has passed: a longer training would run past it."""
    if not loop.cfg.promote.budget_factor or result.state != FINISHED:
        return
    deadline = loop.deadline()
    if deadline is not None and time.time() >= deadline:
        loop.say(f"promotion skipped: past {loop.cfg.loop.until} ([loop] until)")
        return
    promote(loop, loop.store.iterations())
