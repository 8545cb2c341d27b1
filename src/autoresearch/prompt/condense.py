"""A history as text within a number of tokens: condensed when it does not fit, never just cut.

Statistics are always exact and every keep is always listed. When one line per iteration does
not fit, the other iterations are grouped by what they changed (the hyperparameters of train.py's
`# --- hyperparameters ---` block, the functions the rest of the diff touched), each group with
its counts, best and worst values and one representative description; failures are grouped by
kind (stops.failure_kind). `condense` is the whole of it for any caller (the strategist too);
the prompt (context.py) uses its parts around the recent iterations it shows in full.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

from autoresearch.agents.hpo_block import END, START, format_value
from autoresearch.core.history import History
from autoresearch.core.records import STATUSES, Iteration
from autoresearch.core.safe_text import shorten
from autoresearch.core.stops import failure_kind
from autoresearch.core.text import fmt
from autoresearch.core.tokens import estimate

COMPACT_CHARS = 300  # one iteration's line
KEEP_CHARS = (300, 120, 60, 0)  # a keep's line, shorter and shorter until all of them fit
EXAMPLE_CHARS = 120  # a group's representative description or a failure's reason
KEY_CHARS = 160  # what a group changed
_PARAM = re.compile(r"\s*(\w+)\s*=\s*(.*?)\s*(?:#.*)?$")  # NAME = value  # spec
_DEF = re.compile(r"(?:async\s+)?(?:def|class)\s+(\w+)")


def summary(history: list[Iteration], better, metric: str) -> str:
    facts = history if isinstance(history, History) else History(history, better)
    counts = facts.statuses
    per_status = ", ".join(f"{s} {counts[s]}" for s in STATUSES if counts[s])
    best = facts.bests[-1] if facts.bests else None
    if best is None:
        return f"## Statistics\n{len(history)} experiments ({per_status}); no successful run yet."
    first = facts[facts.best_from].iteration  # where the best so far took its last value
    streak = len(facts) - 1 - facts.best_from
    return (
        f"## Statistics\n{len(history)} experiments ({per_status}). Best {metric} {fmt(best)} at "
        f"iteration {first}; {streak} experiments since then without improvement."
    )


def compact_line(it: Iteration, chars: int = COMPACT_CHARS) -> str:
    reason = f" ({it.reason})" if it.reason and not it.kept else ""
    line = f"- {it.iteration}: {it.status} {fmt(it.value)}"
    text = f" {shorten(f'{it.description}{reason}', chars - 1)}" if chars else ""
    return shorten(line + text, COMPACT_CHARS)


@lru_cache(maxsize=65_536)
def _block(source: str) -> tuple[dict[str, str], range]:
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
def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


@lru_cache(maxsize=65_536)
def _region_of_lines(source: str) -> tuple[str, ...]:
    """For each line, the top-level function or class that holds it, else "top level"."""
    regions, region = [], "top level"
    for line in source.splitlines():
        if line.startswith(("def ", "class ", "async ")) and (match := _DEF.match(line)):
            region = match.group(1)
        elif line[:1].strip() and not line.startswith(("#", "@", ")", "]", "}")):
            region = "top level"  # a statement at the top level ends the function before it
        regions.append(region)
    return tuple(regions)


def _regions(source: str, lines: list[str], changed: Counter, skip: range) -> set[str]:
    """The regions that hold the changed lines (those in skip aside)."""
    if not changed:
        return set()
    found, regions = set(), _region_of_lines(source)
    for number, line in enumerate(lines, 1):
        if changed[line] > 0 and number not in skip:
            changed[line] -= 1
            found.add(regions[number - 1])
    return found


@lru_cache(maxsize=65_536)
def what_changed(old: str, new: str) -> tuple[tuple[str, ...], str]:
    """What a train.py changed from its parent's: the hyperparameters, and 'hyperparameters
    LEARNING_RATE, BATCH_SIZE and code in build_model' (the same for every change to the same
    places, whatever the values)."""
    old_values, old_block = _block(old)
    new_values, new_block = _block(new)
    params = sorted(
        name
        for name in old_values.keys() | new_values.keys()
        if old_values.get(name) != new_values.get(name)
    )
    old_lines, new_lines = old.splitlines(), new.splitlines()
    old_counts, new_counts = Counter(old_lines), Counter(new_lines)
    regions = _regions(old, old_lines, old_counts - new_counts, old_block)
    regions |= _regions(new, new_lines, new_counts - old_counts, new_block)
    parts = [f"hyperparameters {', '.join(params)}"] if params else []
    if regions:
        parts.append(f"code in {', '.join(sorted(regions))}")
    return tuple(params), (" and ".join(parts) or "nothing (train.py unchanged)")[:KEY_CHARS]


def change_of(it: Iteration, by_number: dict[int, Iteration]) -> tuple[tuple[str, ...], str]:
    parent = by_number.get(it.parent) if it.parent is not None else None
    if parent is None:
        return (), "unknown (its parent is not in the history)"
    return what_changed(parent.train_py, it.train_py)


def values_tried(members: list[Iteration], params: tuple[str, ...]) -> str:
    """'LEARNING_RATE 0.0003-0.5, OPTIMIZER "adam"/"sgd"': the values a group tried."""
    parts = []
    for name in params[:3]:
        values = [
            _literal(v) for it in members if (v := _block(it.train_py)[0].get(name)) is not None
        ]
        if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            low, high = min(values), max(values)
            parts.append(f"{name} {low:.4g}" + (f" to {high:.4g}" if high != low else ""))
        elif values:
            shown = sorted({format_value(v) for v in values})
            parts.append(f"{name} {'/'.join(shown[:6])}" + ("/…" if len(shown) > 6 else ""))
    return ", ".join(parts)


@dataclass
class Group:
    """Iterations with one thing in common: what they changed, or how they failed."""

    key: str
    members: list[Iteration] = field(default_factory=list)
    params: tuple[str, ...] = ()  # the hyperparameters its members changed

    def counts(self) -> str:
        counts = Counter(it.status for it in self.members)
        return ", ".join(f"{s} {counts[s]}" for s in STATUSES if counts[s])


def _grouped(items: list[tuple[str, Iteration]], params=None) -> list[Group]:
    """Groups in the order of their size, largest first (then the most recent first)."""
    groups: dict[str, Group] = {}
    for key, it in items:
        groups.setdefault(key, Group(key, params=(params or {}).get(key, ()))).members.append(it)
    return sorted(groups.values(), key=lambda g: (-len(g.members), -g.members[-1].iteration))


def _span(members: list[Iteration]) -> str:
    first, last = members[0].iteration, members[-1].iteration
    if len(members) == 1:
        return f"iteration {first}"
    return f"iterations {first}-{last}" if len(members) > 2 else f"iterations {first}, {last}"


def change_line(group: Group, better) -> str:
    scored = [it for it in group.members if it.value is not None]
    best = worst = None
    for it in scored:
        best = it if best is None or better(it.value, best.value) else best
        worst = it if worst is None or better(worst.value, it.value) else worst
    example = best or group.members[-1]
    values = (
        f"; best {fmt(best.value)} ({best.iteration}), worst {fmt(worst.value)}" if best else ""
    )
    tried = values_tried(group.members, group.params)
    tried = f"; tried {tried}" if tried else ""
    return (
        f"- {group.key}: {len(group.members)} ({group.counts()}), {_span(group.members)}"
        f"{tried}{values}; e.g. {example.iteration}: {shorten(example.description, EXAMPLE_CHARS)}"
    )


def failure_line(group: Group, example: bool) -> str:
    last = group.members[-1]
    line = f"- {group.key}: {len(group.members)}, last at iteration {last.iteration}"
    return f"{line}; e.g. {shorten(last.reason or '', EXAMPLE_CHARS)}" if example else line


def _cost(lines: list[str]) -> int:
    return sum(estimate(line) + 1 for line in lines)


ONE_LINE_EACH = "## Earlier experiments, one line each"
LEFT_OUT = 40  # tokens kept for the line that sums up the groups left out


def render_older(older: list[Iteration], tokens: int, better, by_number=None) -> str:
    """Iterations as one line each if that fits in tokens, else condensed: every keep, the
    others grouped by what they changed (the largest groups that fit), failures by kind. With
    too few tokens this is its shortest form, which may not fit: the caller checks."""
    if not older:
        return ""
    lines = [ONE_LINE_EACH, *(compact_line(it) for it in older)]
    if _cost(lines) <= tokens:
        return "\n".join(lines)
    by_number = by_number if by_number is not None else {it.iteration: it for it in older}
    keeps = [it for it in older if it.kept]
    others = [it for it in older if not it.kept]
    failures = _grouped([(kind, it) for it in others if (kind := failure_kind(it)) is not None])
    changed = {it.iteration: change_of(it, by_number) for it in others if it.train_py}
    params = {key: names for names, key in changed.values()}
    changes = _grouped([(changed[it.iteration][1], it) for it in others if it.train_py], params)
    head = [
        f"## Earlier experiments (iterations {older[0].iteration}-{older[-1].iteration}), condensed",
        "### Every keep",
    ]
    heads = ["### Grouped by what they changed", "### Failures by kind"]
    # Shorter keep lines and failure lines until they fit; the shortest form is the last.
    forms = [(chars, example) for chars in KEEP_CHARS for example in (True, False)]
    for chars, example in forms:
        kept = [compact_line(it, chars) for it in keeps] or ["(none)"]
        failed = [failure_line(g, example) for g in failures] or ["(none)"]
        room = tokens - _cost([*head, *kept, *heads, *failed]) - LEFT_OUT
        if room >= 0:
            break
    shown: list[str] = []
    for group in changes:
        line = change_line(group, better)
        room -= estimate(line) + 1
        if room < 0:
            break
        shown.append(line)
    rest = changes[len(shown) :]
    if rest:
        left_out = Group("", [it for group in rest for it in group.members])
        shown.append(
            f"- {len(left_out.members)} more in {len(rest)} smaller groups ({left_out.counts()})"
        )
    return "\n".join([*head, *kept, heads[0], *shown, heads[1], *failed])


def condense(history: list[Iteration], tokens: int, better, metric: str) -> str:
    """The statistics and the history in at most tokens tokens (estimated), wherever its
    shortest form (the statistics, every keep and every kind of failure) fits in them: the
    reusable form for any prompt that needs the whole history bounded (the strategist's too)."""
    stats = summary(history, better, metric)
    return f"{stats}\n\n{render_older(history, tokens - estimate(stats) - 2, better)}".strip()
