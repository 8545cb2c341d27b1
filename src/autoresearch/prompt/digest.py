"""What condensing a history's older iterations (condense.render_older) needs of them, kept up to
date as iterations are added, so that the prompt costs the same at 10 or 10,000 iterations: the
one-line form and its cost, the keeps and their lines, the groups (by what they changed, by how
they failed) with their counts, best, worst and values tried. A prompt's older iterations only
ever grow at their end: the History keeps one Digest (History.views) that each prompt extends."""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from autoresearch.agents.hpo_block import END, START, format_value
from autoresearch.core.records import STATUSES, Iteration
from autoresearch.core.stops import failure_kind
from autoresearch.core.tokens import estimate

COMPACT_CHARS = 300  # one iteration's line
NUMBER = (int, float)
_PARAM = re.compile(r"\s*(\w+)\s*=\s*(.*?)\s*(?:#.*)?$")  # NAME = value  # spec


@lru_cache(maxsize=65_536)
def block(source: str) -> tuple[dict[str, str], range]:
    """The hyperparameter block's values as written (name -> source text) and its lines; a
    quick reading, not hpo_block's validation: only what changed matters here."""
    lines = source.splitlines()
    try:
        start = next(n for n, line in enumerate(lines, 1) if line.strip() == START)
        end = next(n for n, line in enumerate(lines[start:], start + 1) if line.strip() == END)
    except StopIteration:
        return {}, range(0)
    values = dict(m.groups() for line in lines[start : end - 1] if (m := _PARAM.match(line)))
    return values, range(start, end + 1)


@lru_cache(maxsize=65_536)
def literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def is_number(value) -> bool:
    return isinstance(value, NUMBER) and not isinstance(value, bool)


@dataclass
class Tried:
    """The values a group's members gave one hyperparameter: their range while all are
    numbers (the first of equal ones, as min and max keep), and each as written."""

    numeric: bool = True
    low: object = None
    high: object = None
    shown: set[str] = field(default_factory=set)

    def add(self, value) -> None:
        if self.numeric and is_number(value):
            self.low = value if self.low is None or value < self.low else self.low
            self.high = value if self.high is None or value > self.high else self.high
        else:
            self.numeric = False
        self.shown.add(format_value(value))


@dataclass
class Group:
    """Iterations with one thing in common: what they changed, or how they failed; its counts,
    best and worst (by `better`) and the values its members tried, kept as members join."""

    key: str
    better: Callable | None = None
    members: list[Iteration] = field(default_factory=list)
    params: tuple[str, ...] = ()  # the hyperparameters its members changed
    statuses: Counter[str] = field(default_factory=Counter)
    best: Iteration | None = None
    worst: Iteration | None = None
    tried: dict[str, Tried] = field(default_factory=dict)  # by hyperparameter, once asked for

    def add(self, it: Iteration) -> None:
        self.members.append(it)
        self.statuses[it.status] += 1
        if it.value is not None and self.better is not None:
            better = self.better
            self.best = it if self.best is None or better(it.value, self.best.value) else self.best
            self.worst = (
                it if self.worst is None or better(self.worst.value, it.value) else self.worst
            )
        for name, tried in self.tried.items():
            _try(tried, it, name)

    def values(self, name: str) -> Tried:
        """What the members tried for name (counted from all of them the first time)."""
        if name not in self.tried:
            tried = self.tried[name] = Tried()
            for it in self.members:
                _try(tried, it, name)
        return self.tried[name]

    def counts(self) -> str:
        return ", ".join(f"{s} {self.statuses[s]}" for s in STATUSES if self.statuses[s])


def _try(tried: Tried, it: Iteration, name: str) -> None:
    if (text := block(it.train_py)[0].get(name)) is not None:
        tried.add(literal(text))


def by_size(groups: dict[str, Group]) -> list[Group]:
    """Groups in the order of their size, largest first (then the most recent first)."""
    return sorted(groups.values(), key=lambda g: (-len(g.members), -g.members[-1].iteration))


class Prefix(Sequence[Iteration]):
    """The first `length` iterations of a list (a History), read in place: a prompt's older
    iterations, without copying the whole history for each prompt. A slice is a plain list."""

    def __init__(self, items: list[Iteration], length: int):
        self.items, self.length = items, max(0, min(length, len(items)))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index):
        if isinstance(index, slice):
            return list.__getitem__(self.items, slice(*index.indices(self.length)))
        if not -self.length <= index < self.length:
            raise IndexError(index)
        return list.__getitem__(self.items, index % self.length)


def line_cost(line: str) -> int:
    return estimate(line) + 1


class Digest:
    def __init__(self, better, by_number: dict[int, Iteration], change_of, compact):
        """change_of(it, by_number): (params, key) of what it changed; compact(it, chars): its
        line (condense.py's)."""
        self.better, self.by_number, self.change_of, self.compact = (
            better, by_number, change_of, compact,
        )  # fmt: skip
        self.items: list[Iteration] = []
        self.lines: list[str] = []  # one line each (COMPACT_CHARS)
        self.lines_cost = 0
        self.keeps: list[Iteration] = []
        self.keep_lines: dict[int, tuple[list[str], int]] = {}  # by chars: lines, their cost
        self.failures: dict[str, Group] = {}
        self.changes: dict[str, Group] = {}

    def extend(self, older: list[Iteration]) -> Digest:
        """Up to date with older, which extends what it holds (else it starts again)."""
        held = len(self.items)
        if held > len(older) or (held and older[held - 1] is not self.items[-1]):
            self.__init__(self.better, self.by_number, self.change_of, self.compact)
            held = 0
        for it in older[held:]:
            self._add(it)
        return self

    def _add(self, it: Iteration) -> None:
        self.items.append(it)
        line = self.compact(it, COMPACT_CHARS)
        self.lines.append(line)
        self.lines_cost += line_cost(line)
        if it.kept:
            self.keeps.append(it)
            return
        if (kind := failure_kind(it)) is not None:
            self.failures.setdefault(kind, Group(kind)).add(it)
        if it.train_py:
            params, key = self.change_of(it, self.by_number)
            group = self.changes.setdefault(key, Group(key, self.better))
            group.params = params  # the last member's (as the key is cut, they may differ)
            group.add(it)

    def kept(self, chars: int) -> tuple[list[str], int]:
        """The keeps' lines of chars characters, and what they cost."""
        lines, cost = self.keep_lines.get(chars, ([], 0))
        for it in self.keeps[len(lines) :]:
            lines.append(self.compact(it, chars))
            cost += line_cost(lines[-1])
        self.keep_lines[chars] = lines, cost
        return lines, cost
