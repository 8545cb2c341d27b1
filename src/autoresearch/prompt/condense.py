"""A history as text within a number of tokens: condensed when it does not fit, never just cut.

Statistics are always exact and every keep is always listed. When one line per iteration does
not fit, the other iterations are grouped by what they changed (the hyperparameters of train.py's
`# --- hyperparameters ---` block, the functions the rest of the diff touched), each group with
its counts, best and worst values and one representative description; failures are grouped by
kind (stops.failure_kind). `condense` is the whole of it for any caller (the strategist too);
the prompt (context.py) uses its parts around the recent iterations it shows in full.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

from autoresearch.core.history import History
from autoresearch.core.records import STATUSES, Iteration
from autoresearch.core.safe_text import shorten
from autoresearch.core.text import fmt, plural
from autoresearch.core.tokens import estimate
from autoresearch.prompt.digest import COMPACT_CHARS, Digest, Group, block, by_size, line_cost

KEEP_CHARS = (300, 120, 60, 0)  # a keep's line, shorter and shorter until all of them fit
EXAMPLE_CHARS = 120  # a group's representative description or a failure's reason
KEY_CHARS = 160  # what a group changed
_DEF = re.compile(r"(?:async\s+)?(?:def|class)\s+(\w+)")


def summary(history: list[Iteration], better, metric: str) -> str:
    facts = History.of(history, better)
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


def repaired(it: Iteration) -> str:
    """' (after 1 repair)' for an iteration whose crash the agent repaired; '' otherwise."""
    return f" (after {plural(it.repairs, 'repair')})" if it.repairs else ""


def compact_line(it: Iteration, chars: int = COMPACT_CHARS) -> str:
    reason = f" ({it.reason})" if it.reason and not it.kept else ""
    line = f"- {it.iteration}: {it.status} {fmt(it.value)}{repaired(it)}"
    text = f" {shorten(f'{it.description}{reason}', chars - 1)}" if chars else ""
    return shorten(line + text, COMPACT_CHARS)


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
    old_values, old_block = block(old)
    new_values, new_block = block(new)
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


def values_tried(group: Group) -> str:
    """'LEARNING_RATE 0.0003-0.5, OPTIMIZER "adam"/"sgd"': the values a group tried."""
    parts = []
    for name in group.params[:3]:
        tried = group.values(name)
        if tried.numeric and tried.low is not None:
            low, high = tried.low, tried.high
            parts.append(f"{name} {low:.4g}" + (f" to {high:.4g}" if high != low else ""))
        elif tried.shown:
            shown = sorted(tried.shown)
            parts.append(f"{name} {'/'.join(shown[:6])}" + ("/…" if len(shown) > 6 else ""))
    return ", ".join(parts)


def _span(members: list[Iteration]) -> str:
    first, last = members[0].iteration, members[-1].iteration
    if len(members) == 1:
        return f"iteration {first}"
    return f"iterations {first}-{last}" if len(members) > 2 else f"iterations {first}, {last}"


def change_line(group: Group) -> str:
    best, worst = group.best, group.worst
    example = best or group.members[-1]
    values = (
        f"; best {fmt(best.value)} ({best.iteration}), worst {fmt(worst.value)}" if best else ""
    )
    tried = values_tried(group)
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
    return sum(map(line_cost, lines))


ONE_LINE_EACH = "## Earlier experiments, one line each"
LEFT_OUT = 40  # tokens kept for the line that sums up the groups left out


def digest(older: list[Iteration], better, by_number=None) -> Digest:
    """What render_older needs of older, to be extended as it grows (History.views keeps one)."""
    by_number = by_number if by_number is not None else {it.iteration: it for it in older}
    return Digest(better, by_number, change_of, compact_line).extend(older)


def render_older(
    older: list[Iteration], tokens: int, better, by_number=None, known: Digest | None = None
) -> str:
    """Iterations as one line each if that fits in tokens, else condensed: every keep, the
    others grouped by what they changed (the largest groups that fit), failures by kind. With
    too few tokens this is its shortest form, which may not fit: the caller checks. known: a
    digest of a start of older (made here without one)."""
    if not older:
        return ""
    found = known.extend(older) if known is not None else digest(older, better, by_number)
    if line_cost(ONE_LINE_EACH) + found.lines_cost <= tokens:
        return "\n".join([ONE_LINE_EACH, *found.lines])
    failures, changes = by_size(found.failures), by_size(found.changes)
    head = [
        f"## Earlier experiments (iterations {older[0].iteration}-{older[-1].iteration}), condensed",
        "### Every keep",
    ]
    heads = ["### Grouped by what they changed", "### Failures by kind"]
    # Shorter keep lines and failure lines until they fit; the shortest form is the last.
    forms = [(chars, example) for chars in KEEP_CHARS for example in (True, False)]
    for chars, example in forms:
        kept, kept_cost = found.kept(chars)
        if not kept:
            kept, kept_cost = ["(none)"], _cost(["(none)"])
        failed = [failure_line(g, example) for g in failures] or ["(none)"]
        room = tokens - _cost([*head, *heads, *failed]) - kept_cost - LEFT_OUT
        if room >= 0:
            break
    shown: list[str] = []
    for group in changes:
        line = change_line(group)
        room -= estimate(line) + 1
        if room < 0:
            break
        shown.append(line)
    rest = changes[len(shown) :]
    if rest:
        left_out = Group("", statuses=sum((g.statuses for g in rest), Counter()))
        members = sum(len(g.members) for g in rest)
        shown.append(f"- {members} more in {len(rest)} smaller groups ({left_out.counts()})")
    return "\n".join([*head, *kept, heads[0], *shown, heads[1], *failed])


def condense(history: list[Iteration], tokens: int, better, metric: str) -> str:
    """The statistics and the history in at most tokens tokens (estimated), wherever its
    shortest form (the statistics, every keep and every kind of failure) fits in them: the
    reusable form for any prompt that needs the whole history bounded (the strategist's too)."""
    stats = summary(history, better, metric)
    return f"{stats}\n\n{render_older(history, tokens - estimate(stats) - 2, better)}".strip()
