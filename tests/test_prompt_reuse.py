"""The prompt's recent entries are made once: the check that a proposal leaves room and the next
iteration's prompt reuse them, and the prompt is the one a fresh history renders."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoresearch.core import config
from autoresearch.core.history import History
from autoresearch.core.records import BASELINE, CRASH, DISCARD, KEEP, OK, Iteration, TrainingRun
from autoresearch.core.tokens import estimate
from autoresearch.prompt import context
from autoresearch.prompt.context import render_prompt, room_problem
from autoresearch.prompt.stable import render_stable, stable_parts, stable_tokens
from autoresearch.store import workspace

TEMPLATE = (workspace.TASKS["fashion-mnist"] / "train.py").read_text()
PROGRAM = (workspace.TASKS["fashion-mnist"] / "program.md").read_text()


def iteration(n: int, status: str, value: float | None, parent: int | None, log) -> Iteration:
    runs = [
        TrainingRun(OK if value is not None else CRASH, value, None, 9.0, 10.0, 500.0, str(log))
    ]
    return Iteration(
        n, status, value, "exit code 1: BOOM" if status == CRASH else None,
        f"Idea {n}: a longer explanation of what changes and why, {n}.",
        TEMPLATE.replace("LEARNING_RATE = 0.1", f"LEARNING_RATE = {n / 1000:.3f}"),
        parent=parent, train_seconds=9.0, peak_memory_mb=500.0, log_path=str(log), runs=runs,
    )  # fmt: skip


@pytest.fixture
def run(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("".join(f"epoch {e} loss 0.{e:04d}\n" for e in range(1, 31)))
    rng = random.Random(3)
    cfg = config.Config.model_validate({"loop": {"recent_window": 6}})

    def next_iteration(history: History) -> Iteration:
        n = len(history)
        if n == 0:
            return iteration(0, BASELINE, 0.8, None, log)
        status = rng.choices([KEEP, DISCARD, CRASH], [1, 4, 1])[0]
        value = None if status == CRASH else 0.8 + (n / 1000 if status == KEEP else -0.01)
        return iteration(n, status, value, history.incumbent.iteration, log)

    return cfg, next_iteration


def test_the_prompt_and_the_fit_check_are_those_of_a_fresh_history(run):
    cfg, next_iteration = run
    history = History([], cfg.better)
    for _ in range(40):
        history.append(next_iteration(history))
        best = history.incumbent
        prompt = render_prompt(PROGRAM, best, history, cfg)
        assert prompt == render_prompt(PROGRAM, best, History(list(history), cfg.better), cfg)
        for tokens in (2000, 5500, 6000, 60_000):  # too small, tight, roomy
            small = cfg.model_copy(update={"loop": cfg.loop.model_copy(update={"context_tokens": tokens})})  # fmt: skip
            candidate = replace(best, train_py=best.train_py + "# more\n" * 40)
            fresh = History(list(history), cfg.better)
            assert room_problem(PROGRAM, candidate, history, small) == room_problem(
                PROGRAM, candidate, fresh, small
            )


def test_the_fit_check_makes_no_entry_again(run, monkeypatch):
    cfg, next_iteration = run
    history = History([], cfg.better)
    for _ in range(30):
        history.append(next_iteration(history))
    made = []
    full_entry = context.full_entry
    monkeypatch.setattr(
        context, "full_entry", lambda it, *rest: made.append(it.iteration) or full_entry(it, *rest)
    )
    best = history.incumbent
    render_prompt(PROGRAM, best, history, cfg)
    assert made, "the first prompt makes the recent entries"
    made.clear()
    room_problem(PROGRAM, replace(best, train_py=best.train_py + "# more\n"), history, cfg)
    assert made == []
    history.append(next_iteration(history))
    render_prompt(PROGRAM, history.incumbent, history, cfg)
    assert set(made) <= {history[-1].iteration, best.iteration, history.incumbent.iteration}


@given(st.text(), st.text())
def test_no_token_spans_a_newline(first, second):
    """The prompt's tokens are its start's, plus the newline, plus its end's (the prompt's
    start is counted once for both)."""
    assert estimate(f"{first}\n{second}") == estimate(first) + 1 + estimate(second)


@pytest.mark.parametrize("train_py", ["", "  x = 1\n", "é ünïcode\t\n\n", TEMPLATE])
def test_the_prompts_start_counts_as_estimate_counts_it(run, train_py):
    cfg, next_iteration = run
    history = History([], cfg.better)
    for _ in range(8):
        history.append(next_iteration(history))
    start = replace(history.incumbent, train_py=train_py)
    parts = stable_parts(PROGRAM, start, cfg, history)
    assert stable_tokens(parts) == estimate(render_stable(PROGRAM, start, cfg, history))
