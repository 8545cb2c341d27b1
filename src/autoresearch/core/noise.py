"""The noise floor: how much the metric moves between runs of one train.py with other seeds, and
the margin a candidate's mean must beat the incumbent's by before it is kept.

The spread is the pooled within-iteration standard deviation: every iteration with two or more
scored runs (the baseline's noise runs, every confirmed candidate) adds its squared deviations
from its own mean, divided by the sum of (runs - 1). Differences between iterations' means do not
enter it, so it stays sound as train.py changes, under one assumption: a change moves the mean,
not the spread. It grows more precise as the run goes on.

The margin is a one-sided test at 5%: the difference of two means of n_c and n_i runs has the
standard deviation sigma * sqrt(1/n_c + 1/n_i); with sigma estimated on `dof` degrees of freedom
the 95% quantile of Student's t (not the normal's 1.645, which would keep a no-op change more
often while few runs are in) turns it into the margin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import mean

from autoresearch.core.records import OK, Iteration, TrainingRun

# One-sided 95% quantiles of Student's t for 1..30 degrees of freedom; beyond, the
# Cornish-Fisher expansion around the normal's (within 0.001 of the exact value).
T95 = (
    6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812,
    1.796, 1.782, 1.771, 1.761, 1.753, 1.746, 1.740, 1.734, 1.729, 1.725,
    1.721, 1.717, 1.714, 1.711, 1.708, 1.706, 1.703, 1.701, 1.699, 1.697,
)  # fmt: skip
Z95 = 1.6449


@dataclass
class Noise:
    sigma: float | None  # None: no iteration has two scored runs yet
    runs: int  # the runs it was estimated from
    dof: int  # degrees of freedom: runs - iterations


def scored(runs: list[TrainingRun]) -> list[float]:
    return [r.value for r in runs if r.status == OK and r.value is not None]


def spread(it: Iteration) -> tuple[float, int]:
    """What an iteration adds to the estimate: the squared deviations of its scored runs from
    their mean, and how many runs (none unless two or more were scored)."""
    values = scored(it.runs)
    if len(values) < 2:
        return 0.0, 0
    centre = mean(values)
    return sum((v - centre) ** 2 for v in values), len(values)


def pooled(squares: float, runs: int, iterations: int) -> Noise:
    """The estimate from the summed spreads of `iterations` iterations with `runs` runs."""
    dof = runs - iterations
    return Noise(math.sqrt(squares / dof) if dof else None, runs, dof)


def estimate(history: list[Iteration]) -> Noise:
    """The pooled within-iteration standard deviation of every iteration with >= 2 runs."""
    spreads = [s for s in map(spread, history) if s[1]]
    return pooled(sum(s[0] for s in spreads), sum(s[1] for s in spreads), len(spreads))


def t95(dof: int) -> float:
    if dof <= len(T95):
        return T95[dof - 1]
    z = Z95
    return z + (z**3 + z) / (4 * dof) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * dof**2)


def margin(noise: Noise, n_candidate: int, n_incumbent: int) -> float:
    """How much a candidate's mean of n_candidate runs must beat an incumbent's mean of
    n_incumbent runs by, for a no-op change to pass at most 5% of the time."""
    if noise.sigma is None or not noise.dof:
        return 0.0
    return t95(noise.dof) * noise.sigma * math.sqrt(1 / n_candidate + 1 / n_incumbent)
