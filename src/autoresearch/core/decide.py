"""Keep, discard or crash: the one decision of the loop, direction-aware, over an iteration's runs.

A candidate's first run must beat the incumbent's mean by more than `min_improvement`; then
(with `confirm_runs` > 0) it is trained again with new seeds, and kept only if the mean of all
its runs beats the incumbent's mean by more than both `min_improvement` and the noise margin
(noise.margin: a one-sided 5% test, so that a change that does nothing is kept at most ~5% of
the time). With `confirm_runs = 0` one run decides, as it did before confirmation existed.
"""

from __future__ import annotations

from statistics import mean

from autoresearch.core.config import Config
from autoresearch.core.noise import Noise, margin, scored
from autoresearch.core.records import CRASH, DISCARD, KEEP, OK, TIMEOUT, Iteration, TrainingRun
from autoresearch.core.text import fmt


def failure(runs: list[TrainingRun]) -> str | None:
    """The reason of the first run that did not score, or None when every run did."""
    for k, run in enumerate(runs):
        if run.status == OK and run.value is not None:
            continue
        reason = f"timeout: {run.reason}" if run.status == TIMEOUT else run.reason
        return f"run {k + 1} of {len(runs)}: {reason}" if len(runs) > 1 else reason
    return None


def candidate(cfg: Config, first: TrainingRun, incumbent: Iteration | None) -> bool:
    """Would this first run be kept on its own?"""
    if first.status != OK or first.value is None:
        return False
    best = incumbent.value if incumbent is not None else None
    return cfg.better(first.value, best, cfg.loop.min_improvement)


def decide(
    cfg: Config, runs: list[TrainingRun], incumbent: Iteration | None, noise: Noise
) -> tuple[str, str | None]:
    """(status, reason) for an iteration's runs measured against the incumbent's mean."""
    reason = failure(runs)
    if reason is not None or not runs:
        return CRASH, reason
    if not candidate(cfg, runs[0], incumbent):
        return DISCARD, None
    if len(runs) == 1 or incumbent is None or incumbent.value is None:
        return KEEP, None
    average, n_inc = mean(scored(runs)), max(1, len(scored(incumbent.runs)))
    needed = max(cfg.loop.min_improvement, margin(noise, len(runs), n_inc))
    gain = abs(average - incumbent.value)
    versus = (
        f"mean of {len(runs)} runs {fmt(average)} vs {fmt(incumbent.value)} (mean of {n_inc}); "
        f"a keep needs a difference over {needed:.4f}"
    )
    if cfg.better(average, incumbent.value, needed):
        return KEEP, None
    shown = f"{gain:.4f}" if cfg.better(average, incumbent.value) else "none"
    return DISCARD, f"not confirmed: {versus}, got {shown}"
