"""Which iteration each proposal starts from: `[search] policy` (tree by default).

greedy: the best (the incumbent), every time: one track, however many workers train.

tree: the nodes are the kept iterations (the baseline, each keep: the lines that were best in
their time) and the near misses (discards whose value is within the noise margin of the best's:
`noise.margin` for one run against the best's runs). So that a long run's choice costs what a
short one's does, the nodes are the LINES best kept lines and the NEAR_MISSES closest near misses
at most, and a node's gain is over its last RECENT children. Each proposal starts from the node
with the highest score, UCB on each node's children's gains:

    score(c) = standing(c) + gain(c) + explore * scale * sqrt(ln(1 + N) / (1 + n(c)))

standing(c): c's value minus the best's, in the metric's direction (0 for the best, below 0 for
the others); gain(c): the mean of c's children's values minus c's (each at least -3 scale; a
child that did not score counts as -scale), over the children that are not nodes themselves
(a kept child is its own line: its gain is not its parent's to repeat), 0 for none; n(c): c's
children, recorded or in flight; N: all the nodes' children; scale: the noise floor's sigma
(before it is measured, a thousandth of the best's value). Standing and gain exploit (the best,
and the lines whose changes pay); the last term explores, and since a child in flight counts,
proposals asked together spread over the nodes before two share one. Two that share a parent
are told of each other: the prompt lists the experiments in flight with their parents, and
marks the siblings.

Candidates in confirmation: an experiment in flight whose runs so far beat the best (its first
run would be kept; the confirmation runs train) is where the next proposals start, before UCB,
up to PROVISIONAL of them in flight from each (the candidate with the fewest first, then the
higher): waiting for its confirmation would start them a generation behind. With many workers
this is what the tree needs: at 16 workers, 48 experiments are three generations deep, and
without it the proposals made while the first keeps are confirmed all start from the baseline,
whose neighbourhood is soon used up (benchmarks/search_policy.py, 20 seeds: the tree's best
at 16 workers rose from 0.843 to 0.874, greedy's is 0.837; 1 worker is unchanged, nothing is
in flight there). A candidate that fails its confirmation leaves children that are
experiments like any other, decided against the best.

Combine: every `combine_every`-th proposal (by iteration number), when the best and another
node lie on different lines (neither descends from the other) and no iteration merged the two
yet, starts from the best with the other's change (its diff from its own parent) to merge in.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from dataclasses import dataclass, field, replace

from autoresearch.core.config import Config
from autoresearch.core.history import History
from autoresearch.core.noise import margin, scored
from autoresearch.core.records import DISCARD, Iteration

FLOOR = 3  # a child's loss counts down to -FLOOR * scale at most
PROVISIONAL = 4  # proposals in flight at most from one candidate in confirmation
NEAR_MISSES = 32  # the near misses that are nodes, at most: the closest to the best
LINES = 32  # the kept lines that are nodes, at most: the best of them (the best itself first)
RECENT = 64  # a node's gain is its last RECENT children's


@dataclass
class Start:
    """Where a proposal starts: its parent, and a second parent whose change it merges in."""

    parent: Iteration
    other: Iteration | None = None


def choose(cfg: Config, history: History, in_flight: list[Iteration], n: int) -> Start:
    """The start of proposal n, given the recorded history and the proposals in flight."""
    best = history.incumbent
    if cfg.search.policy == "greedy" or best is None or best.value is None:
        return Start(best)
    sign = 1.0 if cfg.direction == "maximize" else -1.0
    noise = history.noise()
    scale = noise.sigma or abs(best.value) / 1000 or 1e-9
    nodes = _nodes(history, best, sign, margin(noise, 1, max(1, len(scored(best.runs)))))
    every = cfg.search.combine_every
    if every and n % every == 0 and (other := _mate(history, best, nodes, in_flight, sign)):
        return Start(best, other)
    flying: dict[int, int] = {}
    for it in in_flight:
        flying[it.parent] = flying.get(it.parent, 0) + 1
    if candidate := _in_confirmation(in_flight, best, sign, flying):
        return Start(candidate)
    visits = {c.iteration: len(history.children.get(c.iteration, [])) + flying.get(c.iteration, 0)
              for c in nodes}  # fmt: skip
    total = sum(visits.values())

    lines = {c.iteration for c in nodes}

    def score(c: Iteration) -> float:
        children = history.children.get(c.iteration, [])[-RECENT:]
        gains = [_gain(child, c, sign, scale) for child in children if child.iteration not in lines]
        exploit = sign * (c.value - best.value) + (sum(gains) / len(gains) if gains else 0.0)
        bonus = (
            cfg.search.explore * scale * math.sqrt(math.log(1 + total) / (1 + visits[c.iteration]))
        )
        return exploit + bonus

    return Start(max(nodes, key=lambda c: (score(c), c is best, -c.iteration)))


def _in_confirmation(
    in_flight: list[Iteration], best: Iteration, sign: float, flying: dict[int, int]
) -> Iteration | None:
    """The experiment in flight whose runs so far beat the best with the fewest proposals in
    flight from it (then the higher), valued at its runs' mean; None where there is none or each
    has PROVISIONAL proposals in flight."""
    found = []
    for it in in_flight:
        values = [run.value for run in it.runs if run.value is not None]
        mean = sum(values) / len(values) if values else None
        if mean is not None and sign * (mean - best.value) > 0:
            found.append(replace(it, value=mean))
    ready = [it for it in found if flying.get(it.iteration, 0) < PROVISIONAL]
    return min(ready, key=lambda it: (flying.get(it.iteration, 0), -sign * it.value), default=None)


@dataclass
class Candidates:
    """What the tree chooses among, kept up to date as the history grows (History.views), so
    that no proposal scans the whole history: the kept iterations with a value, the trained
    discards ordered by value (the near misses are the best of them), the merged pairs."""

    sign: float
    seen: int = 0  # the history's iterations taken in
    kept: list[tuple[float, int]] = field(default_factory=list)  # (sign * value, iteration)
    discards: list[tuple[float, int]] = field(default_factory=list)  # (sign * value, iteration)
    merged: set[frozenset] = field(default_factory=set)  # the parents of each combination

    def extend(self, history: History) -> Candidates:
        for position in range(self.seen, len(history)):
            it = history[position]
            if it.second_parent is not None:
                self.merged.add(frozenset((it.parent, it.second_parent)))
            if it.value is None or not it.runs:  # a repeat is not a line of its own
                continue
            if it.kept:
                insort(self.kept, (self.sign * it.value, it.iteration))
            elif it.status == DISCARD:
                insort(self.discards, (self.sign * it.value, it.iteration))
        self.seen = len(history)
        return self


def candidates(history: History, sign: float) -> Candidates:
    found = history.views.get("search")
    if not isinstance(found, Candidates) or found.sign != sign or found.seen > len(history):
        found = history.views["search"] = Candidates(sign)
    return found.extend(history)


def _nodes(history: History, best: Iteration, sign: float, near: float) -> list[Iteration]:
    """The kept iterations with a value (the LINES best) and the near misses (the NEAR_MISSES
    best)."""
    view = candidates(history, sign)
    slack = 1e-9 * (1 + abs(best.value) + near)  # from the sorted values: then the exact test
    start = bisect_left(view.discards, (sign * best.value - near - slack, -math.inf))
    start = max(start, len(view.discards) - NEAR_MISSES)
    near_misses = [history.by_number[n] for _, n in view.discards[start:]]
    lines = [history.by_number[n] for _, n in view.kept[-LINES:]]
    return [*lines, *(it for it in near_misses if sign * (best.value - it.value) <= near)]


def _gain(child: Iteration, parent: Iteration, sign: float, scale: float) -> float:
    if child.value is None:
        return -scale
    return max(sign * (child.value - parent.value), -FLOOR * scale)


def ancestry(it: Iteration, history: History) -> set[int]:
    """it and the iterations it descends from, by either parent."""
    found, todo = set(), [it.iteration]
    while todo:
        n = todo.pop()
        at = history.by_number.get(n)
        if n in found or at is None:
            continue
        found.add(n)
        todo += [p for p in (at.parent, at.second_parent) if p is not None]
    return found


def _mate(
    history: History, best: Iteration, nodes: list[Iteration], in_flight, sign: float
) -> Iteration | None:
    """The node on another line than the best's whose change is the most worth merging into it
    (the highest value), not merged with it before; None when there is none."""
    merged = candidates(history, sign).merged | {
        frozenset((it.parent, it.second_parent)) for it in in_flight if it.second_parent is not None
    }
    ours = ancestry(best, history)
    mates = [
        c
        for c in nodes
        if c.iteration not in ours
        and c.parent is not None
        and best.iteration not in ancestry(c, history)
        and frozenset((best.iteration, c.iteration)) not in merged
    ]
    return max(mates, key=lambda c: (sign * c.value, -c.iteration), default=None)
