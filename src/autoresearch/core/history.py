"""A run's recorded iterations and the facts derived from them: the incumbent, the best so far,
the last keep, the failure streak, the cost, the noise floor. One owner for each; each kept up to
date as an iteration is appended, so that nothing an iteration does scans the whole history."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from fractions import Fraction

from autoresearch.core.noise import Noise, pooled, spread
from autoresearch.core.records import KEEP, Iteration
from autoresearch.core.repeats import code_key
from autoresearch.core.stops import failure_kind

Better = Callable[[float, float | None], bool]


class History(list[Iteration]):
    """The recorded iterations, in the order recorded (a parallel run records out of order). A
    list, so that what reads one (prompts, reports) reads it unchanged."""

    def __init__(self, iterations: Iterable[Iteration] = (), better: Better | None = None):
        super().__init__()
        self.better = better or (lambda new, best: best is None or new > best)
        self.best: Iteration | None = None  # the best kept iteration with a value
        self.bests: list[float | None] = []  # the incumbent's value after each iteration
        self.best_from = 0  # the position from which bests holds its last value
        self.last_keep = 0  # the last kept iteration (in recorded order); 0: the baseline
        self.streak, self._kind = 0, None  # failures in a row the same way (experiments)
        self.cost_usd = 0.0  # what the agent spent on the recorded iterations
        self.unpriced = 0  # the iterations whose cost is unknown (None)
        self.run_seconds = 0.0  # the wall seconds of every training run, summed in order
        # exact sums (statistics.mean's): the experiments' wall seconds, the runs' (those timed)
        self.walls, self.runs_walls = (Fraction(0), 0), (Fraction(0), 0)
        self.statuses: Counter[str] = Counter()  # how many iterations of each status
        self.keeps: list[int] = []  # the positions of the keeps (status keep, with a value)
        self.failures: dict[str, list[int]] = {}  # by failure kind: its iterations, in order
        # by strategy version: the positions of the experiments under it, their statuses
        self.under: dict[int | None, list[int]] = {}
        self.under_counts: dict[int | None, Counter[str]] = {}
        self.last_number = -1  # the highest iteration number recorded
        self.by_number: dict[int, Iteration] = {}
        self._spread = (0.0, 0, 0)  # the noise floor's sums: squares, runs, iterations
        self._codes: dict[str, int] | None = None  # each trained code (repeats.code_key): its
        # first iteration; made at the first trained_as (tokenizing every train.py costs)
        self.children: dict[int, list[Iteration]] = {}  # by parent (both of a combination's)
        # What other layers derive from the history and keep up to date as it grows, by name
        # (the prompt's digest of the older iterations: prompt/digest.py).
        self.views: dict[str, object] = {}
        for it in iterations:
            self.append(it)

    @classmethod
    def of(cls, iterations: list[Iteration], better: Better | None = None) -> History:
        """iterations as a History: itself when it is one (its facts are kept up to date, and
        derived once), else one made of them."""
        return iterations if isinstance(iterations, History) else cls(iterations, better)

    def append(self, it: Iteration) -> None:
        super().append(it)
        if it.kept:
            self.last_keep = it.iteration
            if it.value is not None and (
                self.best is None or self.better(it.value, self.best.value)
            ):
                self.best = it
        self.bests.append(self.best.value if self.best else None)
        if len(self.bests) > 1 and self.bests[-2] != self.bests[-1]:
            self.best_from = len(self.bests) - 1
        position, kind = len(self) - 1, failure_kind(it)
        if kind:
            self.failures.setdefault(kind, []).append(it.iteration)
        if it.status == KEEP and it.value is not None:
            self.keeps.append(position)
        if it.iteration > 0:
            self.streak = 0 if kind is None else (self.streak + 1 if kind == self._kind else 1)
            self._kind = kind
            self.walls = (self.walls[0] + Fraction(it.wall_seconds), self.walls[1] + 1)
            self.under.setdefault(it.strategy, []).append(position)
            self.under_counts.setdefault(it.strategy, Counter())[it.status] += 1
        self.cost_usd += it.usage.cost_usd or 0.0
        self.unpriced += it.usage.cost_usd is None
        for run in it.runs:
            self.run_seconds += run.wall_seconds
            if run.wall_seconds:
                self.runs_walls = (
                    self.runs_walls[0] + Fraction(run.wall_seconds),
                    self.runs_walls[1] + 1,
                )
        self.statuses[it.status] += 1
        self.last_number = max(self.last_number, it.iteration)
        self.by_number[it.iteration] = it
        self._spread = _plus(self._spread, it)
        if self._codes is not None:
            self._trained(it)
        for parent in {it.parent, it.second_parent} - {None}:
            self.children.setdefault(parent, []).append(it)

    def _trained(self, it: Iteration) -> None:
        if it.runs and it.train_py:
            self._codes.setdefault(code_key(it.train_py), it.iteration)

    def trained_as(self, train_py: str) -> Iteration | None:
        """The first recorded iteration that trained this code (repeats.py), if any."""
        if self._codes is None:
            self._codes = {}
            for it in self:
                self._trained(it)
        found = self._codes.get(code_key(train_py))
        return None if found is None else self.by_number[found]

    def __getitem__(self, index):
        found = super().__getitem__(index)
        return History(found, self.better) if isinstance(index, slice) else found

    @property
    def incumbent(self) -> Iteration | None:
        """What new proposals start from: the best keep, else the baseline. A keep only ever
        beats the best at its time, so this is the last keep, in whichever order it came."""
        return self.best or (self[0] if self else None)

    def noise(self, also: Iteration | None = None) -> Noise:
        """The noise floor (noise.py) of the recorded iterations, and of `also` if given."""
        return pooled(*(_plus(self._spread, also) if also is not None else self._spread))


def _plus(sums: tuple[float, int, int], it: Iteration) -> tuple[float, int, int]:
    squares, runs = spread(it)
    return (sums[0] + squares, sums[1] + runs, sums[2] + 1) if runs else sums


def best_so_far(history: Iterable[Iteration], better: Better) -> list[float | None]:
    """The incumbent's value after each iteration."""
    return History(history, better).bests
