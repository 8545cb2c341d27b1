"""The asynchronous loop without Ray (one trainer in a thread, the agent proposing meanwhile),
proposals pending several at once in the store, and the one-line errors of a run that asks for
Ray where it is missing or its cluster cannot be reached."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from contextlib import closing
from dataclasses import asdict
from pathlib import Path

import pytest
from clirun import AUTORESEARCH
from sleeping_train import workspace

from autoresearch.core.records import DISCARD, Iteration
from autoresearch.store.store import Store

pytestmark = pytest.mark.usefixtures("known_labels", "reaper")


def run(ws: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [AUTORESEARCH, "run", str(ws), *args], capture_output=True, text=True, timeout=timeout
    )


def test_one_asynchronous_worker_trains_while_the_agent_proposes(ws, tmp_path):
    flags = workspace(ws, tmp_path, [(1000, 0.1), (3000, 3.0), (2000, 0.1), (4000, 0.1)])
    done = run(ws, *flags, "--async")
    assert done.returncode == 0, done.stderr
    assert "training on this machine, 1 worker" in done.stderr
    (folder,) = (ws / ".autoresearch" / "runs").iterdir()
    with closing(sqlite3.connect(folder / "run.db")) as db:
        rows = db.execute("SELECT iteration, status, started_at, finished_at FROM iterations")
        got = {r[0]: r[1:] for r in rows}
    assert [got[n][0] for n in range(4)] == ["baseline", "keep", "discard", "keep"]
    assert got[2][1] < got[1][2]  # proposal 2 was asked for before 1's result was in
    prompt = (folder / "iterations" / "0002" / "prompt.md").read_text()
    assert "## Being trained now" in prompt
    assert "iteration 1 (from iteration 0, like yours: a sibling): 3000 right" in prompt
    alone = (folder / "iterations" / "0001" / "prompt.md").read_text()
    assert "Being trained now" not in alone  # nothing was training when 1 was asked for


def test_a_run_on_ray_without_ray_installed_says_how_to_install_it(ws, tmp_path):
    # a `ray` that cannot be imported, first on the path: what a machine without the extra has
    missing = tmp_path / "no-ray" / "ray"
    missing.mkdir(parents=True)
    (missing / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    flags = workspace(ws, tmp_path, [(1000, 0.1), (2000, 0.1)])
    env = {**os.environ, "PYTHONPATH": str(missing.parent)}
    done = subprocess.run(
        [AUTORESEARCH, "run", str(ws), *flags, "--workers", "2"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr  # refused, as a bad setting is
    assert "needs Ray installed: pip install 'autoresearch[ray]'" in done.stderr
    assert "Traceback" not in done.stderr
    sequential = subprocess.run(  # one worker, in step with the agent: no Ray needed
        [AUTORESEARCH, "run", str(ws), "--workers", "1"], capture_output=True, text=True,
        timeout=120, env=env,
    )  # fmt: skip
    assert sequential.returncode == 0, sequential.stderr


def test_an_unreachable_cluster_is_one_line(ws, tmp_path):
    flags = workspace(ws, tmp_path, [(1000, 0.1), (2000, 0.1)])
    done = run(ws, *flags, "--ray-address", "127.0.0.1:9", timeout=60)
    assert done.returncode == 2, done.stderr  # refused, as a bad setting is
    assert "could not reach the Ray cluster at 127.0.0.1:9" in done.stderr
    assert "Traceback" not in done.stderr


def test_several_proposals_pend_at_once_and_each_leaves_with_its_record(tmp_path):
    store = Store.create(tmp_path / "run", {})
    for n in (3, 1, 2):
        store.set_pending(Iteration(n, DISCARD, None, explanation=f"idea {n}"), [f"note {n}"])
    assert store.pending_numbers() == [1, 2, 3]
    it, notes = store.pending(2)
    assert it.explanation == "idea 2" and notes == ["note 2"]
    store.record(Iteration(2, DISCARD, 0.5, explanation="idea 2"))
    assert store.pending_numbers() == [1, 3] and store.pending(2) is None
    # a store of schema 3 kept them in `meta` (a release before parallel runs kept one, not
    # keyed by number, and one training process): they move to their own tables
    old = asdict(Iteration(1, DISCARD, None, explanation="idea 1"))
    old.pop("runs")
    store.close()
    with closing(sqlite3.connect(tmp_path / "run" / "run.db")) as db:
        for table in ("pending", "training", "live"):
            db.execute(f"DROP TABLE {table}")
        for key, value in [
            ("pending", {"iteration": old, "notes": ["old"]}),
            ("inflight", {"iteration": 1, "pid": 4242, "created": 1.5}),
            ("live", {"phase": "training", "iteration": 1, "started_at": 1.5}),
        ]:
            db.execute("INSERT INTO meta VALUES (?, ?)", (key, json.dumps(value)))
        db.execute("PRAGMA user_version = 3")
        db.commit()
    store = Store(tmp_path / "run")
    assert store.pending_numbers() == [1] and store.pending(1)[1] == ["old"]
    assert store.pending(1)[0].explanation == "idea 1"
    assert store.training() == [(1, 0, 4242, 1.5)] and store.live() is None
    assert store.get("pending") is None and store.get("inflight") is None


def test_the_live_line_names_the_other_experiments_training():
    from autoresearch.views.display import phase_text

    live = {"phase": "training", "iteration": 3, "budget_secs": 60, "in_flight": [1, 2]}
    assert phase_text(live, 12) == (
        "iteration 3: training, 0:12 (0:48 of the budget left); training too: 2 iterations (1, 2)"
    )
    assert "training too" not in phase_text({"phase": "training", "iteration": 3}, 1)


def test_the_settings_line_says_how_many_train_at_once(cfg):
    from autoresearch.core.config import with_flags
    from autoresearch.loop.runs import describe_settings

    assert "worker" not in describe_settings(cfg)  # one, in step with the agent: as before
    assert describe_settings(with_flags(cfg, {"run.workers": 2})).endswith(
        ", 2 workers, asynchronous"
    )
    assert describe_settings(with_flags(cfg, {"run.asynchronous": True})).endswith(
        ", 1 worker, asynchronous"
    )


def test_a_proposal_whose_runs_were_all_recorded_is_decided_on_resume_without_training(
    ws, tmp_path
):
    # A kill after an iteration's last run was recorded, before its row: the resume decides it
    # from the recorded run, and trains nothing again.
    flags = workspace(ws, tmp_path, [(1000, 0.1), (3000, 0.1), (2000, 0.1)])
    assert run(ws, *flags, "--async").returncode == 0
    (folder,) = (ws / ".autoresearch" / "runs").iterdir()
    store = Store(folder)
    it = store.iteration(2)
    store.db.execute("DELETE FROM iterations WHERE iteration = 2")
    store.set_pending(it, [])
    store.set(state="interrupted")
    store.close()
    again = run(ws, "--async")
    assert again.returncode == 0, again.stderr
    assert "iteration 2: training" not in again.stderr
    assert "iteration 2: discard val_accuracy 0.2000" in again.stderr
    with closing(sqlite3.connect(folder / "run.db")) as db:
        assert db.execute("SELECT count(*) FROM training_runs WHERE iteration = 2").fetchone() == (
            1,
        )
        assert db.execute("SELECT status FROM iterations WHERE iteration = 2").fetchone() == (
            "discard",
        )
