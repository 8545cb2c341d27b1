"""The facts a run keeps up to date as iterations are recorded (History's aggregates, the prompt's
digest of the older iterations, the display's and the ETA's inputs) against the same facts
computed from the whole history at once, over random histories: a wrong incremental update
shows here. The reference computations are the ones these replaced."""

from __future__ import annotations

import random
from collections import Counter
from fractions import Fraction
from statistics import mean

import pytest

from autoresearch.agents.hpo_block import format_value
from autoresearch.core import noise
from autoresearch.core.config import Config
from autoresearch.core.history import History
from autoresearch.core.records import (
    BASELINE,
    CRASH,
    DISCARD,
    INVALID,
    KEEP,
    OK,
    STATUSES,
    TIMEOUT,
    Iteration,
    TrainingRun,
    Usage,
)
from autoresearch.core.repeats import code_key
from autoresearch.core.stops import failure_kind
from autoresearch.loop import search
from autoresearch.prompt import condense
from autoresearch.prompt.condense import digest, render_older, summary
from autoresearch.prompt.context import render_history
from autoresearch.prompt.digest import Prefix, block, literal
from autoresearch.views.snapshot import eta_secs

TEMPLATE = """import torch

# --- hyperparameters ---
LEARNING_RATE = {lr}
BATCH_SIZE = {batch}
OPTIMIZER = {optimizer}
# --- end hyperparameters ---


def build_model():
    return {model}


def train():
    pass{extra}
"""


def source(rng: random.Random) -> str:
    return TEMPLATE.format(
        lr=rng.choice(["0.1", "0.01", "3e-4", "1", "1.0", "0.5"]),
        batch=rng.choice(["32", "64", "128", "True", "None"]),
        optimizer=rng.choice(['"adam"', '"sgd"', "'adamw'", "0.9"]),
        model=rng.choice(["torch.nn.Linear(784, 10)", "torch.nn.Sequential()"]),
        extra=rng.choice(["", "\n    return 1", "  # a comment"]),
    )


def random_history(seed: int, size: int) -> list[Iteration]:
    """A parallel-looking run: statuses, failures of a few kinds, runs with seeds, costs (some
    unknown), values that tie, parents among the recorded ones."""
    rng = random.Random(seed)
    found: list[Iteration] = []
    for n in range(size):
        status = BASELINE if n == 0 else rng.choice([KEEP, DISCARD, DISCARD, CRASH, INVALID])
        value = None if status in (CRASH, INVALID) else round(rng.uniform(0.8, 0.9), 2)
        runs = [
            TrainingRun(
                OK if value is not None else rng.choice([CRASH, TIMEOUT]),
                value if value is None else value + rng.choice([-0.01, 0.0, 0.02]),
                None,
                train_seconds=rng.uniform(1, 9),
                wall_seconds=rng.choice([0.0, rng.uniform(1, 20)]),
                peak_memory_mb=None,
                log_path=None,
            )
            for _ in range(rng.choice([0, 1, 1, 2, 3]) if status != INVALID else 0)
        ]
        reason = None
        if status in (CRASH, INVALID):
            reason = rng.choice(
                ["ValueError: bad shape 3", "timeout after 12 s", "the same code as iteration 4"]
            )
        found.append(
            Iteration(
                iteration=n,
                status=status,
                value=value,
                reason=reason,
                explanation=f"idea {n}: {rng.choice(['wider', 'deeper', 'faster'])}",
                train_py=source(rng) if rng.random() > 0.05 else "",
                parent=rng.randrange(n) if n else None,
                usage=Usage(cost_usd=rng.choice([None, 0.01, 0.02, 0.0])),
                wall_seconds=rng.uniform(5, 50),
                runs=runs,
                strategy=rng.choice([None, 1, 2, 2, 3]),
            )
        )
    rng.shuffle(found[1:5])  # recorded out of order, as a parallel run does
    return found


def better(new, best):
    return best is None or new > best


def reference_bests(history: list[Iteration]) -> list[float | None]:
    best, bests = None, []
    for it in history:
        if it.kept and it.value is not None and (best is None or better(it.value, best)):
            best = it.value
        bests.append(best)
    return bests


@pytest.mark.parametrize("seed", range(8))
def test_history_s_aggregates_match_the_whole_history_recomputed(seed):
    iterations = random_history(seed, 120)
    history = History([], better)
    for size, it in enumerate(iterations, 1):
        history.append(it)
        whole = iterations[:size]
        assert history.statuses == Counter(i.status for i in whole)
        bests = reference_bests(whole)
        assert history.bests == bests
        if bests[-1] is not None:  # where the last best value first appeared
            assert history.best_from == bests.index(bests[-1])
        assert history.unpriced == sum(i.usage.cost_usd is None for i in whole)
        assert history.run_seconds == sum(r.wall_seconds for i in whole for r in i.runs)
        assert history.noise() == noise.estimate(whole)
        walls = [Fraction(i.wall_seconds) for i in whole if i.iteration > 0]
        assert history.walls == (sum(walls, Fraction(0)), len(walls))
        assert history.keeps == [
            k for k, i in enumerate(whole) if i.status == KEEP and i.value is not None
        ]
        kinds: dict[str, list[int]] = {}
        for i in whole:
            if kind := failure_kind(i):
                kinds.setdefault(kind, []).append(i.iteration)
        assert history.failures == kinds and list(history.failures) == list(kinds)
        for version in (None, 1, 2, 3, 4):
            under = [k for k, i in enumerate(whole) if i.strategy == version and i.iteration > 0]
            assert history.under.get(version, []) == under
            counts = Counter(whole[k].status for k in under)
            assert history.under_counts.get(version, Counter()) == counts
    for it in iterations:
        first = next(
            (
                i
                for i in iterations
                if i.runs and i.train_py and code_key(i.train_py) == code_key(it.train_py)
            ),
            None,
        )
        assert history.trained_as(it.train_py) is first


def reference_summary(history: list[Iteration], metric: str) -> str:
    counts = Counter(it.status for it in history)
    per_status = ", ".join(f"{s} {counts[s]}" for s in STATUSES if counts[s])
    bests = reference_bests(history)
    best = bests[-1] if bests else None
    if best is None:
        return f"## Statistics\n{len(history)} experiments ({per_status}); no successful run yet."
    first = next(it.iteration for it, b in zip(history, bests, strict=True) if b == best)
    streak = len(bests) - 1 - bests.index(best)
    return (
        f"## Statistics\n{len(history)} experiments ({per_status}). Best {metric} "
        f"{condense.fmt(best)} at iteration {first}; {streak} experiments since then without "
        "improvement."
    )


def reference_eta(history: list[Iteration], planned: int, live: dict) -> float | None:
    left = planned - (len(history) - 1)
    if left <= 0:
        return 0.0
    done = [it.wall_seconds for it in history if it.iteration > 0] or [history[0].wall_seconds]
    pace = mean(done)
    runs = [r.wall_seconds for it in history for r in it.runs if r.wall_seconds]
    elapsed = live.get("elapsed_secs", 0.0)
    if live.get("phase") == "training" and live.get("runs") and runs:
        per_run = mean(runs)
        current = max(0.0, per_run - elapsed) + (live["runs"] - live.get("run", 1)) * per_run
    else:
        current = max(0.0, pace - elapsed)
    return round(current + (left - 1) * pace, 1)


@pytest.mark.parametrize("seed", range(4))
def test_the_statistics_and_the_eta_match_the_whole_history_recomputed(seed):
    iterations = random_history(seed, 80)
    history = History([], better)
    live = {"phase": "training", "runs": 3, "run": 2, "elapsed_secs": 4.0}
    for size, it in enumerate(iterations, 1):
        history.append(it)
        whole = iterations[:size]
        assert summary(history, better, "acc") == reference_summary(whole, "acc")
        assert summary(whole, better, "acc") == reference_summary(whole, "acc")
        for planned in (size - 2, size + 5):
            assert eta_secs(history, planned, live) == reference_eta(whole, planned, live)
            assert eta_secs(history, planned, {}) == reference_eta(whole, planned, {})


# --- the condensed older iterations, as render_older made them from the whole list ---
def reference_values_tried(members: list[Iteration], params: tuple[str, ...]) -> str:
    parts = []
    for name in params[:3]:
        values = [
            literal(v) for it in members if (v := block(it.train_py)[0].get(name)) is not None
        ]
        if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            low, high = min(values), max(values)
            parts.append(f"{name} {low:.4g}" + (f" to {high:.4g}" if high != low else ""))
        elif values:
            shown = sorted({format_value(v) for v in values})
            parts.append(f"{name} {'/'.join(shown[:6])}" + ("/…" if len(shown) > 6 else ""))
    return ", ".join(parts)


def reference_groups(items, params=None) -> list[tuple[str, list[Iteration], tuple]]:
    groups: dict[str, list[Iteration]] = {}
    for key, it in items:
        groups.setdefault(key, []).append(it)
    ordered = sorted(groups.items(), key=lambda g: (-len(g[1]), -g[1][-1].iteration))
    return [(key, members, (params or {}).get(key, ())) for key, members in ordered]


def reference_counts(members: list[Iteration]) -> str:
    counts = Counter(it.status for it in members)
    return ", ".join(f"{s} {counts[s]}" for s in STATUSES if counts[s])


def reference_change_line(key, members, params) -> str:
    best = worst = None
    for it in (it for it in members if it.value is not None):
        best = it if best is None or better(it.value, best.value) else best
        worst = it if worst is None or better(worst.value, it.value) else worst
    example = best or members[-1]
    values = (
        f"; best {condense.fmt(best.value)} ({best.iteration}), worst {condense.fmt(worst.value)}"
        if best
        else ""
    )
    tried = reference_values_tried(members, params)
    tried = f"; tried {tried}" if tried else ""
    first, last = members[0].iteration, members[-1].iteration
    span = (
        f"iteration {first}"
        if len(members) == 1
        else (f"iterations {first}-{last}" if len(members) > 2 else f"iterations {first}, {last}")
    )
    description = condense.shorten(example.description, condense.EXAMPLE_CHARS)
    return (
        f"- {key}: {len(members)} ({reference_counts(members)}), {span}{tried}{values}; "
        f"e.g. {example.iteration}: {description}"
    )


def reference_older(older: list[Iteration], tokens: int, by_number) -> str:
    if not older:
        return ""
    lines = [condense.ONE_LINE_EACH, *(condense.compact_line(it) for it in older)]
    if condense._cost(lines) <= tokens:
        return "\n".join(lines)
    keeps = [it for it in older if it.kept]
    others = [it for it in older if not it.kept]
    failures = reference_groups(
        [(kind, it) for it in others if (kind := failure_kind(it)) is not None]
    )
    changed = {it.iteration: condense.change_of(it, by_number) for it in others if it.train_py}
    params = {key: names for names, key in changed.values()}
    changes = reference_groups(
        [(changed[it.iteration][1], it) for it in others if it.train_py], params
    )
    head = [
        f"## Earlier experiments (iterations {older[0].iteration}-{older[-1].iteration}), condensed",
        "### Every keep",
    ]
    heads = ["### Grouped by what they changed", "### Failures by kind"]
    for chars in condense.KEEP_CHARS:
        for example in (True, False):
            kept = [condense.compact_line(it, chars) for it in keeps] or ["(none)"]
            failed = [
                f"- {key}: {len(m)}, last at iteration {m[-1].iteration}"
                + (f"; e.g. {condense.shorten(m[-1].reason or '', 120)}" if example else "")
                for key, m, _ in failures
            ] or ["(none)"]
            room = tokens - condense._cost([*head, *kept, *heads, *failed]) - condense.LEFT_OUT
            if room >= 0:
                break
        if room >= 0:
            break
    shown: list[str] = []
    for key, members, names in changes:
        line = reference_change_line(key, members, names)
        room -= condense.estimate(line) + 1
        if room < 0:
            break
        shown.append(line)
    rest = changes[len(shown) :]
    if rest:
        left = [it for _, members, _ in rest for it in members]
        shown.append(f"- {len(left)} more in {len(rest)} smaller groups ({reference_counts(left)})")
    return "\n".join([*head, *kept, heads[0], *shown, heads[1], *failed])


@pytest.mark.parametrize("seed", range(4))
def test_the_digest_of_older_iterations_condenses_them_as_the_whole_list_does(seed):
    iterations = random_history(seed, 150)
    by_number = {it.iteration: it for it in iterations}
    known = digest([], better, by_number)
    rng = random.Random(seed)
    size = 0
    while size < len(iterations):
        size = min(len(iterations), size + rng.randint(1, 12))  # older grows at its end
        older = iterations[:size]
        for tokens in (0, 150, 400, 1500, 100_000):
            expected = reference_older(older, tokens, by_number)
            assert render_older(older, tokens, better, known=known) == expected
            assert render_older(older, tokens, better, by_number) == expected
    other = random_history(seed + 100, 30)  # not what it holds the start of: it starts again
    expected = reference_older(other, 400, by_number)
    assert render_older(other, 400, better, known=known) == expected


def test_the_prompt_s_history_is_the_same_from_a_history_kept_or_from_a_list():
    cfg = Config.model_validate({"loop": {"context_tokens": 6000, "recent_window": 5}})
    iterations = random_history(3, 200)
    history = History([], cfg.better)
    for it in iterations:
        history.append(it)
        kept = render_history(history, "full", 5, cfg.better, "acc", 3000)
        assert kept == render_history(list(history), "full", 5, cfg.better, "acc", 3000)


def test_a_prefix_reads_as_the_first_items_of_the_history_it_does_not_copy():
    history = History(random_history(5, 12))
    for length in (0, 1, 7, 12, 20):
        older, expected = Prefix(history, length), list(history)[:length]
        assert len(older) == len(expected) and bool(older) == bool(expected)
        assert list(older) == expected and older[2:] == expected[2:] and older[:-1] == expected[:-1]
        assert type(older[1:]) is list  # a slice derives no History facts
        if expected:
            assert older[0] is expected[0] and older[-1] is expected[-1]
        with pytest.raises(IndexError):
            older[len(expected)]
    history.append(random_history(6, 1)[0])
    assert len(Prefix(history, 12)) == 12  # the history grows; the prefix stays its length


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_the_tree_search_s_candidates_match_the_whole_history_rescanned(seed, sign):
    iterations = random_history(seed, 200)  # over LINES keeps and NEAR_MISSES discards
    rng = random.Random(seed)
    for it in iterations[2:]:
        if rng.random() < 0.1:
            it.second_parent = rng.randrange(it.iteration)
    history = History([], better)
    for size, it in enumerate(iterations, 1):
        history.append(it)
        whole = iterations[:size]
        best = max((i for i in whole if i.kept and i.value is not None),
                   key=lambda i: sign * i.value, default=whole[0])  # fmt: skip
        if best.value is None:
            continue
        for near in (0.0, 0.004, 0.03, 1.0):  # 1.0: every discard is near, past NEAR_MISSES
            expected = [
                i.iteration
                for i in whole
                if i.value is not None
                and i.runs
                and (i.kept or (i.status == DISCARD and sign * (best.value - i.value) <= near))
            ]
            near_misses = sorted(
                (sign * by[n].value, n) for n in expected if not (by := history.by_number)[n].kept
            )[-search.NEAR_MISSES :]  # the closest to the best
            lines = sorted(
                (sign * by[n].value, n) for n in expected if (by := history.by_number)[n].kept
            )[-search.LINES :]  # the best kept lines
            expected = [n for _, n in lines + near_misses]
            found = search._nodes(history, best, sign, near)
            assert sorted(i.iteration for i in found) == sorted(expected)
        merged = {
            frozenset((i.parent, i.second_parent)) for i in whole if i.second_parent is not None
        }
        assert search.candidates(history, sign).merged == merged
