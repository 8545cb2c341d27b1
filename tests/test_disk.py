"""What a train.py writes never breaks a run: a full disk is a recorded crash and the run goes on
(its files are removed before anything is recorded), a store whose newest pages are still in its
write-ahead log opens, and `[resources] disk_mb` bounds what an experiment writes. Full disks are
real: small tmpfs mounts (root only; skipped elsewhere)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from clirun import AUTORESEARCH, assert_one_line_error, make_run, snapshot_files
from conftest import CLASS_0, single_run

from autoresearch.store.layout import runs_dir
from autoresearch.store.workspace import fingerprint
from autoresearch.training.limits import Limits
from autoresearch.training.local import run_training

# Writes 1 MB files until the file system is full, still printing, then fails to save.
FILL = """\
import numpy as np
import prepare
print("filling", flush=True)
try:
    with open("checkpoint.bin", "wb") as f:
        while True:
            f.write(b"\\0" * 2**20)
            f.flush()
            print("checkpoint: another MB " + "x" * 200, flush=True)
except OSError as err:
    print("full:", err, flush=True)
for step in range(1000):
    print("still training, step", step, "x" * 200, flush=True)
prepare.save_predictions(np.full(10000, 1, dtype=np.int64))
"""
# Writes 1 MB files (each below the limit) up to 40 MB, then waits for the budget.
RUNAWAY = """\
import time
for n in range(40):
    with open(f"junk-{n}.bin", "wb") as f:
        f.write(b"\\1" * 2**20)
print("wrote 40 MB", flush=True)
time.sleep(600)
"""


def mount_tmpfs(mount: Path, size: str) -> None:
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")


@pytest.fixture
def small_disk(tmp_path):
    """A fresh 100 MB file system (the run's data view takes half): its path."""
    mount = tmp_path / "disk"
    mount_tmpfs(mount, "100m")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def cli(*args: str, tmpdir: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, **({"TMPDIR": str(tmpdir)} if tmpdir else {}))
    return subprocess.run(
        [AUTORESEARCH, *args], capture_output=True, text=True, timeout=600, env=env
    )


def replay_run(ws: Path, proposals: dict[str, str], tmpdir: Path | None = None):
    """A run of ws replaying proposals ({name: train.py}), one per iteration; the process."""
    folder = ws.parent / "proposals"
    folder.mkdir()
    for name, code in proposals.items():
        (folder / f"{name}.py").write_text(code)
        (folder / f"{name}.md").write_text(f"{name}\n\nto see what happens")
    argv = ["run", str(ws), "--agent", "replay", "--replay-dir", str(folder)]
    argv += ["--iterations", str(len(proposals)), "--budget", "120", "--grace", "30"]
    return cli(*argv, tmpdir=tmpdir)


def iterations(ws: Path) -> list[dict]:
    done = cli("status", str(ws), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["iterations"]


def training_log(ws: Path, n: int) -> str:
    (log,) = runs_dir(ws).glob(f"*/iterations/{n:04d}/train.log")
    return log.read_text()


def test_a_train_py_that_fills_the_disk_is_a_crash_and_the_run_goes_on(small_disk):
    ws, tmp = small_disk / "ws", small_disk / "tmp"  # the workspace and the experiments: one disk
    tmp.mkdir()
    from autoresearch.store import workspace

    workspace.init(ws, "fashion-mnist", sys.executable)
    single_run(ws)
    (ws / "train.py").write_text(CLASS_0)
    next_one = CLASS_0.replace("PREDICTION = 0 ", "PREDICTION = 1 ")
    run = replay_run(ws, {"001-fill": FILL, "002-next": next_one}, tmpdir=tmp)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr and "Exception in thread" not in run.stderr
    base, full, after = iterations(ws)
    assert (base["status"], full["status"], after["status"]) == ("baseline", "crash", "discard")
    assert full["reason"].startswith("train.log could not be written (No space left on device)")
    assert after["value"] == pytest.approx(0.1)  # the next iteration trained and was scored
    log = training_log(ws, 1)
    assert log.startswith("filling\n")
    assert "bytes of output lost (No space left on device)" in log
    assert log.rstrip().endswith("OSError: [Errno 28] No space left on device")  # the tail
    assert not list(small_disk.rglob("checkpoint.bin"))  # the disk is free again


def fill(folder: Path) -> None:
    """Write until the file system is full, to its last byte."""
    with open(folder / "filler", "wb", buffering=0) as f:
        for size in (2**16, 2**12, 2**9, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                pass


def header_bytes(db: Path) -> int:
    header = db.read_bytes()[:100]
    return int.from_bytes(header[16:18], "big") * int.from_bytes(header[28:32], "big")


def test_a_store_whose_last_pages_are_still_in_its_wal_opens_whole(tmp_path):
    """A checkpoint cut short by a full disk writes run.db's header but not its last pages,
    which stay in run.db-wal: the store is whole, and SQLite, not a size check, says so."""
    mount = tmp_path / "disk"
    mount_tmpfs(mount, "8m")
    try:
        from autoresearch.core.records import Iteration
        from autoresearch.store import workspace

        workspace.init(mount / "ws", "fashion-mnist", sys.executable)
        store = make_run(mount / "ws")
        store.record(Iteration(iteration=3, status="discard", explanation="x" * 200_000))
        fill(mount)
        store.close()  # its checkpoint fails on the full disk
        db, wal = store.path, store.path.with_name("run.db-wal")
        assert db.stat().st_size < header_bytes(db) and wal.stat().st_size > 0
        (mount / "filler").unlink()
        assert [it["iteration"] for it in iterations(mount / "ws")] == [0, 1, 2, 3]
        assert iterations(mount / "ws")[3]["status"] == "discard"
        assert db.stat().st_size == header_bytes(db)  # checkpointed once there was room
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_truncated_store_with_a_wal_is_still_refused_and_left_as_it_is(ws):
    store = make_run(ws, iterations=20, prompt_size=20_000)
    store.close()
    db, wal = store.path, store.path.with_name("run.db-wal")
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("PRAGMA wal_autocheckpoint=0")
    other.execute("INSERT INTO meta VALUES ('probe', '1')")  # frames in run.db-wal
    frames = wal.read_bytes()
    assert frames
    other.close()  # checkpointed, the log removed
    wal.write_bytes(frames)  # as a copy of a store in use would have it
    os.truncate(db, db.stat().st_size // 2)
    before = snapshot_files(store.dir)
    assert_one_line_error(cli("status", str(ws)), "is truncated", "left as it is")
    assert snapshot_files(store.dir) == before  # no index (-shm) left beside it


def run(tmp_path: Path, body: str, disk_mb: int, **kw):
    (tmp_path / "train.py").write_text(textwrap.dedent(body))
    limits = Limits(None, None, disk_mb=disk_mb)
    return run_training(
        sys.executable, tmp_path, 120, 5, tmp_path.parent / "train.log", limits=limits, **kw
    )


def test_a_runaway_writer_is_killed_at_the_disk_limit_and_its_files_removed(tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = run(workdir, RUNAWAY, disk_mb=8, keep=("train.py",))
    assert result.limit_reason == "disk limit reached: train.py wrote over [resources] disk_mb = 8"
    assert not result.killed  # by the watchdog, long before the budget
    assert sorted(p.name for p in workdir.iterdir()) == ["train.py"]  # the 40 MB are gone


def test_no_file_grows_past_the_disk_limit(tmp_path):
    body = """
        with open("one.bin", "wb") as f:
            for _ in range(30):
                f.write(b"\\1" * 2**20)
    """
    result = run(tmp_path, body, disk_mb=8)
    assert result.limit_reason.startswith("disk limit reached: train.py wrote over [resources]")
    assert "File too large" in result.limit_reason
    assert (tmp_path / "one.bin").stat().st_size == 8 * 2**20


@pytest.mark.parametrize("shell", ["exec ", ""])  # head itself, or the shell that ran it
def test_a_program_killed_for_a_file_past_the_limit_is_the_disk_limit(tmp_path, shell):
    command = ["sh", "-c", f"{shell}head -c 30000000 /dev/zero > big.bin"]  # SIGXFSZ kills head
    result = run(tmp_path, "", disk_mb=8, command=command)
    assert result.limit_reason == "disk limit reached: train.py wrote over [resources] disk_mb = 8"


HIDE = """
    import os
    os.mkdir("hidden")
    for n in range(20):
        with open(f"hidden/{n}.bin", "wb") as f:
            f.write(b"\\1" * 2**20)
    os.chmod("hidden", 0)
"""
AS_A_USER = """
import json, sys
from pathlib import Path
from autoresearch.training.limits import Limits
from autoresearch.training.local import run_training
work = Path(sys.argv[1])
result = run_training(sys.executable, work, 120, 5, work.parent / "train.log",
                      limits=Limits(None, None, disk_mb=8), keep=("train.py",))
print(json.dumps([result.limit_reason, sorted(p.name for p in work.iterdir())]))
"""


def test_a_folder_made_unreadable_hides_nothing(tmp_path):
    """What train.py hid in a folder it took every permission away from (root ignores them, so
    here root runs the orchestrator's side without that power) is counted and removed."""
    user = []
    if os.getuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("root, and no setpriv (util-linux) to run as a user would")
        caps = "-dac_override,-dac_read_search"
        user = ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}"]
    work = tmp_path / "work"
    work.mkdir()
    (work / "train.py").write_text(textwrap.dedent(HIDE))
    done = subprocess.run(
        [*user, sys.executable, "-c", AS_A_USER, str(work)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    reason, left = json.loads(done.stdout)
    assert reason == "disk limit reached: train.py wrote over [resources] disk_mb = 8"
    assert left == ["train.py"]


def test_a_runaway_experiment_is_a_crash_and_the_rest_of_the_run_is_untouched(ws):
    single_run(ws)
    with open(ws / "autoresearch.toml", "a") as f:
        f.write("\n[resources]\ndisk_mb = 8\n")
    (ws / "train.py").write_text(CLASS_0)
    before = fingerprint(ws, skip=())
    next_one = CLASS_0.replace("PREDICTION = 0 ", "PREDICTION = 1 ")
    done = replay_run(ws, {"001-runaway": RUNAWAY, "002-next": next_one})
    assert done.returncode == 0, done.stderr
    base, runaway, after = iterations(ws)
    assert runaway["status"] == "crash"
    assert runaway["reason"] == "disk limit reached: train.py wrote over [resources] disk_mb = 8"
    assert training_log(ws, 1) in ("", "wrote 40 MB\n")  # its log, killed before or after
    assert (base["status"], after["status"], after["value"]) == ("baseline", "discard", 0.1)
    assert {k: v for k, v in fingerprint(ws, skip=()).items() if ".autoresearch" not in k} == {
        k: v for k, v in before.items() if ".autoresearch" not in k
    }  # the workspace as it was
