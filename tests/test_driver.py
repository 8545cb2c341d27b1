"""The one driver (scheduler.py) over the fake engine: arrival order, confirmation against a
moving best, retries after a lost worker, resume after a kill, sequential asking, in
milliseconds and always the same way. Real store, trials, decisions, recorder and git; only
the agent and the engine are stand-ins. And the one rule for where a run trains."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest

from autoresearch.core.config import Config
from autoresearch.core.records import BASELINE, CRASH, DISCARD, FINISHED, KEEP
from autoresearch.loop.fake_run import fake_run
from autoresearch.training.engines import LocalEngine
from autoresearch.training.fake_engine import FakeEngine, Outcome
from autoresearch.training.placement import engine_for, on_ray


def settings(**loop) -> Config:
    return Config.model_validate({"loop": {"noise_runs": 1, "confirm_runs": 0, **loop}})


def recorded(store) -> list[tuple[int, str, float | None]]:
    """(iteration, status, value) in the order recorded."""
    with closing(sqlite3.connect(store.path)) as db:
        return db.execute(
            "SELECT iteration, status, value FROM iterations ORDER BY finished_at"
        ).fetchall()


def test_results_are_decided_in_the_order_they_arrive_and_the_best_never_moves_back(tmp_path):
    # iteration 1 trains long and scores best; 2 and 3 arrive before it
    values = {0: (1, 0.5), 1: (100, 0.9), 2: (10, 0.7), 3: (20, 0.6), 4: (1, 0.8), 5: (1, 0.85)}
    engine = FakeEngine(3, lambda job: Outcome(*values[job.n]))
    result, store, agent = fake_run(tmp_path / "run", settings(iterations=5), engine)
    assert result.state == FINISHED
    assert recorded(store) == [
        (0, BASELINE, 0.5), (2, KEEP, 0.7), (4, KEEP, 0.8), (5, KEEP, 0.85), (3, DISCARD, 0.6),
        (1, KEEP, 0.9),
    ]  # fmt: skip
    # each proposal started from the best at the moment it was asked for (4 waited ready for a
    # worker while 1, 2 and 3 trained; 5 was asked for once 2 was kept)
    assert agent.asked == [(1, 0, []), (2, 0, [1]), (3, 0, [1, 2]), (4, 0, [1, 2, 3]),
                           (5, 2, [1, 3, 4])]  # fmt: skip
    assert store.pending_numbers() == [] and store.training() == []


def test_a_candidate_is_confirmed_against_the_best_when_its_last_run_is_in(tmp_path):
    # 1's first run beats the baseline; while its confirmation trains, 2 is kept higher
    values = {(0, 0): (1, 0.5), (0, 1): (1, 0.5), (1, 0): (5, 0.7), (1, 1): (50, 0.7)}
    values |= {(2, 0): (10, 0.9), (2, 1): (10, 0.9)}
    engine = FakeEngine(2, lambda job: Outcome(*values[job.n, job.k]))
    cfg = settings(iterations=2, noise_runs=2, confirm_runs=1)
    result, store, _ = fake_run(tmp_path / "run", cfg, engine)
    assert result.state == FINISHED
    assert [row[:2] for row in recorded(store)] == [(0, BASELINE), (2, KEEP), (1, DISCARD)]
    assert len(store.runs()[1]) == 2  # confirmed, then measured against 2, not the baseline


def test_a_run_that_loses_its_worker_is_trained_again_then_recorded_as_a_crash(tmp_path):
    def script(job):
        if job.n == 1:
            return Outcome(5, lost="node gone")
        if job.n == 2 and job.attempt == 1:
            return Outcome(5, lost="worker died")
        return Outcome(1, 0.5 + job.n / 10)

    engine = FakeEngine(2, script)
    result, store, _ = fake_run(tmp_path / "run", settings(iterations=2), engine)
    rows = {n: status for n, status, _ in recorded(store)}
    assert rows == {0: BASELINE, 1: CRASH, 2: KEEP}
    assert store.iteration(1).reason == "its worker died 2 times: node gone"
    assert [(j.n, j.attempt) for j in engine.started if j.n] == [(1, 1), (2, 1), (1, 2), (2, 2)]


class Killed(KeyboardInterrupt):
    pass


def test_a_run_killed_mid_flight_resumes_without_asking_or_training_again(tmp_path):
    cfg = settings(iterations=5, confirm_runs=1)
    values = {0: 0.5, 1: 0.6, 2: 0.55, 3: 0.7, 4: 0.4, 5: 0.8}

    def script(job):
        if (job.n, job.k) == (3, 1):  # 3's confirmation: the orchestrator dies as it starts
            raise Killed()
        return Outcome(1 + job.n, values[job.n])

    with pytest.raises(Killed):
        fake_run(tmp_path / "run", cfg, FakeEngine(2, script))
    engine = FakeEngine(2, lambda job: Outcome(1, values[job.n]))
    result, store, agent = fake_run(tmp_path / "run", cfg, engine)
    assert result.state == FINISHED
    assert sorted(n for n, _, _ in recorded(store)) == [0, 1, 2, 3, 4, 5]  # each once
    assert 3 not in [n for n, _, _ in agent.asked]  # its proposal was stored: not asked again
    assert (3, 0) not in [(j.n, j.k) for j in engine.started]  # its first run was recorded
    assert (3, 1) in [(j.n, j.k) for j in engine.started]
    assert store.iteration(3).status == KEEP and len(store.iteration(3).runs) == 2


def test_a_sequential_run_asks_only_when_nothing_is_in_flight(tmp_path):
    engine = FakeEngine(1, lambda job: Outcome(1, 0.5 + job.n / 100))
    result, store, agent = fake_run(
        tmp_path / "run", settings(iterations=4), engine, sequential=True, invalid={2}
    )
    assert result.state == FINISHED
    assert [in_flight for _, _, in_flight in agent.asked] == [[], [], [], []]
    assert [row[:2] for row in recorded(store)] == [
        (0, BASELINE), (1, KEEP), (2, "invalid"), (3, KEEP), (4, KEEP),
    ]  # fmt: skip


def test_an_exhausted_agent_ends_the_run_once_what_trains_is_recorded(tmp_path):
    engine = FakeEngine(4, lambda job: Outcome(10 - job.n, 0.5))
    result, store, _ = fake_run(tmp_path / "run", settings(iterations=9), engine, proposals=3)
    assert (result.state, result.message) == (FINISHED, "no more than 3 proposals")
    assert sorted(n for n, _, _ in recorded(store)) == [0, 1, 2, 3]


@pytest.mark.parametrize(
    "run, address, ray",
    [
        ({"asynchronous": True}, "ray://elsewhere:10001", False),  # docs/scale-out.md: here, no Ray
        ({}, "ray://elsewhere:10001", False),
        ({"workers": 2}, None, True),
        ({"ray_address": "auto"}, None, True),
    ],
)
def test_one_rule_decides_where_a_run_trains(run, address, ray, monkeypatch):
    if address:
        monkeypatch.setenv("RAY_ADDRESS", address)
    else:
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
    cfg = Config.model_validate({"run": run})
    assert on_ray(cfg) is ray
    if not ray:
        assert isinstance(engine_for(None, cfg, "tag"), LocalEngine)
