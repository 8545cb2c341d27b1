"""Keeps worth a second look, derived from the records: a gain far beyond the run's earlier ones
in noise units, a holdout gain much smaller than the validation gain, or runs that score the same
under different seeds (a train.py that ignores its seed makes the noise floor a fiction). One
line of reason each; nothing is decided from them."""

from __future__ import annotations

from autoresearch.core.config import Config
from autoresearch.core.noise import estimate
from autoresearch.core.records import HOLDOUT_PREFIX, KEEP, OK, Iteration

FAR = 5.0  # a gain over this many times the largest earlier keep's gain, in sigmas ...
MIN_SIGMAS = 4.0  # ... and over this many sigmas
HOLDOUT_SHARE = 0.25  # a holdout gain under this share of the validation gain


def _same_scores(it: Iteration) -> str | None:
    runs = [r for r in it.runs if r.status == OK and r.value is not None and r.seed is not None]
    seeds = {r.seed for r in runs}
    if len(seeds) < 2 or len({r.value for r in runs}) > 1:
        return None
    shown = ", ".join(str(s) for s in sorted(seeds))
    return (
        f"its {len(runs)} runs scored exactly {runs[0].value:.4f} under seeds {shown}: train.py "
        "seems to ignore AUTORESEARCH_SEED, so the noise floor measures nothing"
    )


def flags(history: list[Iteration], cfg: Config) -> list[dict]:
    """[{"iteration", "reasons"}] for each baseline or keep with a reason to doubt it."""
    sign = 1 if cfg.direction == "maximize" else -1
    sigma = estimate(history).sigma
    holdout = HOLDOUT_PREFIX + cfg.metric
    found = []
    best: Iteration | None = None  # the best before the one looked at
    earlier: list[float] = []  # earlier keeps' gains, in sigmas
    for it in sorted(history, key=lambda h: h.iteration):
        if not it.kept or it.value is None:
            continue
        reasons = [r for r in [_same_scores(it)] if r]
        if it.status == KEEP and best is not None:
            gain = sign * (it.value - best.value)
            if sigma:
                z = gain / sigma
                if earlier and z >= MIN_SIGMAS and z >= FAR * max(max(earlier), 0.0):
                    reasons.append(
                        f"its gain {gain:+.4f} is {z:.1f} sigma, over {FAR:g}x the largest "
                        f"earlier keep's ({max(earlier):.1f} sigma)"
                    )
                earlier.append(z)
            if holdout in it.metrics and holdout in best.metrics and gain > 0:
                held = sign * (it.metrics[holdout] - best.metrics[holdout])
                if held < HOLDOUT_SHARE * gain and (not sigma or gain - held > 2 * sigma):
                    reasons.append(
                        f"its holdout gain {held:+.4f} is far below its validation gain "
                        f"{gain:+.4f}: it may fit the decision data, not the task"
                    )
        if reasons:
            found.append({"iteration": it.iteration, "reasons": reasons})
        if best is None or cfg.better(it.value, best.value):
            best = it
    return found
