"""What the strategist reads, bounded however long the run: statistics over every iteration,
the most recent keeps, failures grouped by kind, a line each for the iterations before the
last few, those last few in full (explanation and the lines their diff changed), and a line
per earlier strategy with what its iterations achieved. Older iterations count only in the
statistics and the groups, so the input stops growing after a few dozen iterations."""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass

from autoresearch.core.config import Config
from autoresearch.core.history import History
from autoresearch.core.records import CRASH, DISCARD, INVALID, KEEP, Iteration, Strategy
from autoresearch.core.text import fmt
from autoresearch.prompt.condense import compact_line, summary
from autoresearch.prompt.context import noise_text

RECENT, COMPACT, KEEPS, FAILURE_KINDS, VERSIONS = 10, 50, 20, 8, 10
EXPLANATION_CHARS, KEEP_CHARS, DIFF_LINES, DIFF_LINE_CHARS = 600, 300, 8, 120


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def changed_lines(old: str, new: str) -> list[str]:
    """The lines a change removed (-) and added (+), at most DIFF_LINES of them."""
    diff = difflib.unified_diff(old.splitlines(), new.splitlines(), n=0, lineterm="")
    lines = [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    shown = [line[:DIFF_LINE_CHARS] for line in lines[:DIFF_LINES]]
    if len(lines) > DIFF_LINES:
        shown.append(f"... {len(lines) - DIFF_LINES} more changed lines")
    return shown


def _keeps(facts: History) -> list[str]:
    shown = facts.keeps[-KEEPS:]
    lines = []
    for index in shown:
        it = facts[index]
        before = facts.bests[index - 1] if index else None
        gain = "" if before is None else f" ({it.value - before:+.4f})"
        lines.append(f"- {it.iteration}: {fmt(it.value)}{gain} {_cut(it.explanation, KEEP_CHARS)}")
    if len(facts.keeps) > KEEPS:
        return [f"({len(facts.keeps) - KEEPS} earlier keeps not shown)", *lines]
    return lines


def _failures(facts: History) -> list[str]:
    ranked = sorted(facts.failures.items(), key=lambda item: -len(item[1]))[:FAILURE_KINDS]
    return [
        f"- {len(its)} x {_cut(kind, 160)} (iterations {', '.join(map(str, its[-5:]))})"
        for kind, its in ranked
    ]


def _full(it: Iteration, parent: Iteration | None, metric: str) -> str:
    under = "" if it.strategy is None else f", under strategy {it.strategy}"
    lines = [f"### Iteration {it.iteration}: {it.status}, {metric} {fmt(it.value)}{under}"]
    if it.reason:
        lines.append(f"Reason: {_cut(it.reason, 300)}")
    lines.append(_cut(it.explanation, EXPLANATION_CHARS) or "(no explanation)")
    changed = changed_lines(parent.train_py, it.train_py) if parent and it.train_py else []
    if changed:
        lines += ["Changed lines:", *(f"    {line}" for line in changed)]
    return "\n".join(lines)


def render_history(history: list[Iteration], cfg: Config) -> str:
    if not history:
        return "No experiments yet."
    history = History.of(history, cfg.better)
    by_number = history.by_number
    recent = history[-RECENT:]
    compact = history[max(0, len(history) - RECENT - COMPACT) : len(history) - len(recent)]
    parts = [summary(history, cfg.better, cfg.metric) + "\n" + noise_text(history, cfg.metric)]
    keeps = _keeps(history)
    parts.append("## What was kept, with the gain over the best before it\n" + (
        "\n".join(keeps) if keeps else "Nothing yet: no experiment beat the baseline."
    ))  # fmt: skip
    failures = _failures(history)
    if failures:
        parts.append("## How experiments failed, by kind\n" + "\n".join(failures))
    if compact:
        older = len(history) - len(recent) - len(compact)
        head = f"## Iterations {compact[0].iteration} to {compact[-1].iteration}, one line each"
        if older:
            head += f" ({older} older ones count in the statistics above)"
        parts.append(head + "\n" + "\n".join(compact_line(it) for it in compact))
    parts.append(
        f"## The last {len(recent)} iterations in full\n\n"
        + "\n\n".join(_full(it, by_number.get(it.parent), cfg.metric) for it in recent)
    )
    return "\n\n".join(parts)


@dataclass
class Tally:
    """What the iterations that ran under one strategy version achieved."""

    span: tuple[int, int] | None  # its first and last iteration (None: none yet)
    counts: Counter
    gain: float | None  # how far the best moved while it was in force

    def line(self) -> str:
        if self.span is None:
            return "no iterations yet"
        span = self.span
        where = f"iteration {span[0]}" if span[0] == span[1] else f"iterations {span[0]}-{span[1]}"
        statuses = ", ".join(
            f"{s} {self.counts[s]}" for s in (KEEP, DISCARD, CRASH, INVALID) if self.counts[s]
        )
        gain = "" if self.gain is None else f"; best {self.gain:+.4f}"
        return f"{where}: {statuses or 'baseline only'}{gain}"


def tally(version: int, history: list[Iteration], cfg: Config) -> Tally:
    facts = History.of(history, cfg.better)
    index = facts.under.get(version, [])
    if not index:
        return Tally(None, Counter(), None)
    before = facts.bests[index[0] - 1] if index[0] else None
    after = facts.bests[index[-1]]
    gain = after - before if before is not None and after is not None else None
    span = (facts[index[0]].iteration, facts[index[-1]].iteration)
    return Tally(span, Counter(facts.under_counts[version]), gain)


def render_versions(strategies: list[Strategy], history: list[Iteration], cfg: Config) -> str:
    """Earlier versions, one line each (the last VERSIONS), and the rejected replies' count."""
    versions = [s for s in strategies if s.version is not None][:-1]
    rejected = sum(1 for s in strategies if s.version is None)
    if not versions and not rejected:
        return ""
    lines = ["", "## Earlier strategies and what their iterations achieved"]
    if len(versions) > VERSIONS:
        lines.append(f"({len(versions) - VERSIONS} earlier versions not shown)")
    for s in versions[-VERSIONS:]:
        said = _cut(s.text, 200)
        lines.append(f"- version {s.version} ({tally(s.version, history, cfg).line()}): {said}")
    if rejected:
        lines.append(f"({rejected} strategist replies were rejected and changed nothing)")
    return "\n".join(lines) + "\n"
