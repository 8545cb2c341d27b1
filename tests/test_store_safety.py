"""A run store fails loudly and safely: damaged, foreign, read-only, on a full disk, without its
git repository. Every case is one line from the real console script, and the files are left as
they were. Read-only and full file systems are real: small tmpfs mounts (root only)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from clirun import AUTORESEARCH, assert_one_line_error, cli, make_run, snapshot_files

from autoresearch.core.records import Iteration
from autoresearch.store import workspace
from autoresearch.store.results import write_results
from autoresearch.store.store import Store, StoreError
from autoresearch.views.report import write_report


def mount_cmd(*options: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *options], capture_output=True, text=True)


def truncate(db: Path) -> None:
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])


def foreign(db: Path) -> None:
    db.unlink()
    with sqlite3.connect(db) as other:
        other.execute("CREATE TABLE photos (id INTEGER, name TEXT)")
    other.close()


DAMAGE = {
    "truncated": (truncate, "is truncated"),
    "empty": (lambda db: db.write_bytes(b""), "is empty"),
    "garbage": (lambda db: db.write_bytes(b"not a database\n" * 100), "not an SQLite database"),
    "foreign": (foreign, "not an autoresearch run store"),
}


@pytest.mark.parametrize("kind", DAMAGE)
def test_a_damaged_or_foreign_run_db_is_one_line_and_left_untouched(ws, kind):
    store = make_run(ws, iterations=20, prompt_size=20_000)  # several hundred KiB of pages
    store.close()
    damage, words = DAMAGE[kind]
    damage(store.dir / "run.db")
    before = snapshot_files(store.dir)
    commands = [["status"], ["status", "--json"], ["report"]]
    if kind == "truncated":
        commands.append(["run", "--agent", "hpo", "--iterations", "30"])
    for command in commands:
        proc = cli(command[0], str(ws), *command[1:])
        assert_one_line_error(proc, words, "left as it is", "--new")
        assert snapshot_files(store.dir) == before, command  # nothing re-created or rewritten


def test_opening_a_run_for_status_and_report_changes_nothing(ws):
    store = make_run(ws)
    write_report(store)
    store.close()
    before = snapshot_files(store.dir)
    assert cli("status", str(ws)).returncode == 0
    assert cli("status", str(ws), "--json").returncode == 0
    assert snapshot_files(store.dir) == before  # no -wal/-shm/lock files left, run.db as it was


@pytest.fixture
def tmpfs(tmp_path):
    """A fresh small tmpfs mount; its path. Skipped where mounting is not allowed."""
    mount = tmp_path / "mnt"
    mount.mkdir()

    done = mount_cmd("-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_status_and_report_work_on_a_read_only_store(tmpfs, tmp_path):
    ws = tmpfs / "ws"
    workspace.init(ws, "fashion-mnist", sys.executable)
    make_run(ws).close()
    assert mount_cmd("-o", "remount,ro", str(tmpfs)).returncode == 0
    table = cli("status", str(ws))
    assert table.returncode == 0, table.stderr
    assert "best val_accuracy: 0.5200 at iteration 2" in table.stdout
    snap = json.loads(cli("status", str(ws), "--json").stdout)
    assert snap["state"] == "finished" and len(snap["iterations"]) == 3
    assert_one_line_error(cli("report", str(ws)), "read-only", "--out")
    elsewhere = tmp_path / "elsewhere"
    report = cli("report", str(ws), "--out", str(elsewhere))
    assert report.returncode == 0, report.stderr
    assert "### Iteration 2: 0.5200" in (elsewhere / "report.md").read_text()
    assert (elsewhere / "progress.png").read_bytes()[:4] == b"\x89PNG"


def fill(folder: Path) -> None:
    """Write until the file system is full."""
    with open(folder / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


def test_a_full_disk_is_one_line_and_leaves_every_file_whole(tmpfs):
    ws = tmpfs / "ws"
    workspace.init(ws, "fashion-mnist", sys.executable)
    store = make_run(ws)
    write_report(store)
    write_results(store.dir / "results.tsv", store.iterations(), store.config())
    before = snapshot_files(store.dir)
    fill(tmpfs)
    report = cli("report", str(ws))
    assert_one_line_error(report, "No space left on device")
    with pytest.raises(StoreError, match="No space left on device"):
        write_results(store.dir / "results.tsv", store.iterations(), store.config())
    with pytest.raises(StoreError, match="No space left on device"):
        store.record(Iteration(iteration=3, status="discard", explanation="x" * 1_000_000))
    with pytest.raises(StoreError, match="disk is full"):
        store.set(notes="x" * 1_000_000)
    db = ("run.db", "run.db-wal", "run.db-shm")  # checked through the store, below
    after = {k: v for k, v in snapshot_files(store.dir).items() if k not in db}
    assert after == {
        k: v for k, v in before.items() if k not in db
    }  # no 0-byte report.md or progress.png, no leftover temporary files
    assert [it.iteration for it in store.iterations()] == [0, 1, 2]


def test_a_missing_run_repository_is_one_line_and_the_run_keeps_its_state(ws):
    store = make_run(ws)
    store.close()
    subprocess.run(["rm", "-rf", str(store.dir / "repo")], check=True)
    proc = cli("run", str(ws), "--iterations", "5")
    # after: resuming, changed, settings, the estimate
    assert_one_line_error(proc, "git repository", "is missing", "--new", after=4)
    snap = json.loads(cli("status", str(ws), "--json").stdout)
    assert snap["state"] == "finished" and snap["stop_reason"] == "2 iterations done"
    assert not (store.dir / "repo").exists()


def test_store_create_refuses_an_existing_store(ws):
    store = make_run(ws)
    with pytest.raises(StoreError, match="already exists"):
        Store.create(store.dir, {})
    assert os.path.getsize(store.dir / "run.db") > 0


def test_a_kill_during_report_never_leaves_a_partial_report(ws):
    store = make_run(ws)
    write_report(store)
    whole = {name: (store.dir / name).read_bytes() for name in ("report.md", "progress.png")}
    for delay in (0.5, 0.8, 1.1, 1.4, 1.7):
        proc = subprocess.Popen([AUTORESEARCH, "report", str(ws)], stdout=subprocess.DEVNULL)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for name, data in whole.items():
            assert (store.dir / name).read_bytes() == data  # the old file or the new one, whole
