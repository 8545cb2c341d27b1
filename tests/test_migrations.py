"""A store that can grow: a run made by release 0.1.0 (checked in as a fixture, made by that
release's own `autoresearch run --agent hpo --iterations 2`) opens read-only untouched, resumes
under this release with nothing lost, and a store from a newer release is refused in one line."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
from contextlib import closing
from pathlib import Path

import pytest

from autoresearch.store import migrations
from autoresearch.store.store import Store, StoreError

AUTORESEARCH = str(Path(sys.executable).parent / "autoresearch")
FIXTURE = Path(__file__).parent / "fixtures" / "run-0.1.0.tar.gz"


@pytest.fixture
def old_ws(tmp_path) -> Path:
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(tmp_path, filter="data")
    return tmp_path / "ws"


def cli(*args: str) -> subprocess.CompletedProcess:
    # The fixture's interpreter is `python3`, found on PATH: this one, which has torch.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([AUTORESEARCH, *args], capture_output=True, text=True, env=env)


def db_of(ws: Path) -> Path:
    return next((ws / ".autoresearch" / "runs").glob("*/run.db"))


def user_version(db: Path) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_fixture_is_a_store_of_the_old_release(old_ws):
    assert user_version(db_of(old_ws)) == 0  # before migrations existed
    assert migrations.SCHEMA_VERSION >= 1


def test_an_old_store_is_read_without_being_changed(old_ws):
    db = db_of(old_ws)
    before = digest(db)
    status = cli("status", str(old_ws), "--json")
    assert status.returncode == 0, status.stderr
    snap = json.loads(status.stdout)
    assert [it["status"] for it in snap["iterations"]] == ["baseline", "keep", "discard"]
    assert snap["best"]["iteration"] == 1
    assert digest(db) == before and user_version(db) == 0
    # every trained iteration has its one run; seeds were not recorded then, nor a noise floor
    assert all(it["values"] == [it["value"]] for it in snap["iterations"])
    assert all(it["seeds"] == [None] and it["metrics"] == {} for it in snap["iterations"])
    assert snap["noise"] == {"sigma": None, "runs": 0}


def test_an_old_run_resumes_with_nothing_lost(old_ws):
    before = json.loads(cli("status", str(old_ws), "--json").stdout)
    result = cli("run", str(old_ws), "--iterations", "3")
    assert result.returncode == 0, result.stderr
    after = json.loads(cli("status", str(old_ws), "--json").stdout)
    assert len(after["iterations"]) == 4 and after["iterations"][3]["status"] in (
        "keep",
        "discard",
    )
    for old, new in zip(before["iterations"], after["iterations"], strict=False):
        for key in ("status", "value", "explanation", "commit", "train_seconds", "cost_usd"):
            assert new[key] == old[key], key
    assert user_version(db_of(old_ws)) == migrations.SCHEMA_VERSION
    # it goes on as it started: one run per iteration, no confirmation, no holdout
    assert after["iterations"][3]["seeds"] == [3000] and after["iterations"][3]["metrics"] == {}
    assert after["noise"] == {"sigma": None, "runs": 0}
    # the old iterations' code is still in the run's git history
    repo = db_of(old_ws).parent / "repo"
    refs = subprocess.run(
        ["git", "--git-dir", str(repo), "for-each-ref", "--format=%(refname)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert {f"refs/experiments/{n:04d}" for n in range(4)} <= set(refs)


def test_the_recent_logs_of_a_moved_store_are_found(old_ws):
    """The fixture was made under another folder: its recorded log paths point there."""
    store = Store(db_of(old_ws).parent, readonly=True)
    try:
        logs = [Path(it.log_path) for it in store.iterations()]
    finally:
        store.close()
    assert all(log.is_file() and old_ws in log.parents for log in logs)


def test_a_store_from_a_newer_release_is_refused_in_one_line(old_ws):
    db = db_of(old_ws)
    with closing(sqlite3.connect(db)) as conn:
        conn.execute(f"PRAGMA user_version = {migrations.SCHEMA_VERSION + 1}")
        conn.commit()
    before = digest(db)
    for args in (("status", str(old_ws)), ("run", str(old_ws))):
        result = cli(*args)
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "newer autoresearch" in lines[0], result.stderr
    assert digest(db) == before
    with pytest.raises(StoreError, match="upgrade autoresearch"):
        Store(db.parent)


def test_a_failing_migration_leaves_the_store_as_it_was(old_ws, monkeypatch):
    def broken(db):
        db.execute("ALTER TABLE iterations ADD COLUMN half_done")
        raise RuntimeError("migration bug")

    db = db_of(old_ws)
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, broken])
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", len(migrations.MIGRATIONS))
    with pytest.raises(RuntimeError, match="migration bug"):
        Store(db.parent)
    assert user_version(db) == migrations.SCHEMA_VERSION - 1  # the earlier ones are kept
    with closing(sqlite3.connect(db)) as conn:
        assert "half_done" not in migrations.columns(conn, "iterations")
