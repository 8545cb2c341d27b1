"""Run bundles on the real short run (conftest.py): one file that status, report, compare, export
and serve read as they read the workspace, read-only; `init --from` starts a workspace from one;
compare marks a bundle made on other hardware; a consistent store copy while a run writes."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import signed_in
from typer.testing import CliRunner

from autoresearch.cli.app import app
from autoresearch.core import config
from autoresearch.loop.runs import create
from autoresearch.store.store import Store, list_runs
from autoresearch.views.bundle import resolve

cli = CliRunner()


def invoke(*args):
    return cli.invoke(app, [str(a) for a in args])


def status(where: Path) -> dict:
    result = invoke("status", where, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def bundled(short_run, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bundle") / "run.tar.gz"
    result = invoke("bundle", short_run, "-o", path)
    assert result.exit_code == 0, result.output
    assert f"wrote {path}" in result.stdout
    return path


def test_a_bundle_reads_as_its_workspace_read_only(short_run, bundled, tmp_path):
    assert status(bundled) == status(short_run)
    result = invoke("status", bundled)
    assert result.exit_code == 0
    assert f"reading bundle {bundled} (read-only)" in result.stderr

    ws_export, b_export = invoke("export", short_run), invoke("export", bundled)
    assert b_export.exit_code == 0 and b_export.stdout == ws_export.stdout
    assert "read-only" in b_export.stderr

    refused = invoke("report", bundled)
    assert refused.exit_code == 1 and "read-only; pass --out DIR" in refused.stderr
    written = invoke("report", bundled, "--out", tmp_path)
    assert written.exit_code == 0, written.output
    assert "# Run" in (tmp_path / "report.md").read_text()

    compared = invoke("compare", bundled, "--json")
    assert compared.exit_code == 0, compared.output
    assert "compare.png not drawn" in compared.stderr
    assert [r["run"] for r in json.loads(compared.stdout)["runs"]] == [list_runs(short_run)[0].name]

    # the dashboard reads the unpacked folder like a workspace
    client = signed_in(resolve(bundled).workspace)
    assert client.get("/api/runs").json()[0]["run"] == status(short_run)["run"]


def test_a_bundle_holds_every_experiments_code_and_the_machine(short_run, bundled):
    folder = resolve(bundled).workspace
    run = list_runs(folder)[0]
    repo = run / "repo"
    refs = subprocess.run(
        ["git", "--git-dir", str(repo), "for-each-ref", "--format=%(refname)"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert "refs/heads/best" in refs and "refs/experiments/0001" in refs
    shown = subprocess.run(
        ["git", "--git-dir", str(repo), "show", "refs/experiments/0001:train.py"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    store = Store(list_runs(short_run)[0], readonly=True)
    assert shown == store.iteration(1).train_py
    for name in ("train.log", "train.py", "diff.patch"):
        assert (run / "iterations" / "0001" / name).read_bytes() == (
            store.iteration_dir(1) / name
        ).read_bytes()
    assert (run / "report.md").is_file() and (run / "results.tsv").is_file()
    assert not (run / "lock").exists() and not (run / "run.db-wal").exists()
    manifest = json.loads((folder / ".autoresearch" / "bundle.json").read_text())
    machine = manifest["hardware"]
    assert machine["cores"] >= 1 and machine["memory_gb"] > 0 and machine["cpu"]
    assert machine["torch"]  # the training interpreter's, which has torch
    assert isinstance(machine["gpus"], list)
    # read-only, as said: the unpacked files cannot be written by a user who is not root
    assert not any(p.stat().st_mode & 0o222 for p in [folder, run, run / "run.db"])


def test_the_store_is_copied_consistently_while_a_run_writes(short_run, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(short_run, ws, symlinks=True)
    db_path = list_runs(ws)[0] / "run.db"
    # a live run: its last write is in the write-ahead log, not in run.db yet
    writer = sqlite3.connect(db_path, isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('stop_reason', '\"late\"')")
    try:
        raw = tmp_path / "raw" / db_path.parent.name
        raw.mkdir(parents=True)
        shutil.copy(db_path, raw / "run.db")  # a plain file copy misses it
        assert Store(raw, readonly=True).get("stop_reason") != "late"
        out = tmp_path / "live.tar.gz"
        assert invoke("bundle", ws, "-o", out).exit_code == 0
    finally:
        writer.close()
    assert status(out)["stop_reason"] == "late"


def test_init_from_a_bundle_starts_where_the_run_got_to(short_run, bundled, tmp_path):
    ws = tmp_path / "new"
    result = invoke("init", ws, "--from", f"{bundled}:1")
    assert result.exit_code == 0, result.output
    store = Store(list_runs(short_run)[0], readonly=True)
    assert (ws / "train.py").read_text() == store.iteration(1).train_py
    own = list_runs(short_run)[0] / "workspace"
    for name in ("program.md", "prepare.py"):
        assert (ws / name).read_bytes() == (own / name).read_bytes()
    assert "started from iteration 1" in result.stdout
    # the best, by default
    best = status(short_run)["best"]["iteration"]
    other = tmp_path / "best"
    assert invoke("init", other, "--from", bundled).exit_code == 0
    assert (other / "train.py").read_text() == store.iteration(best).train_py
    # a run started there records where it came from
    cfg = config.load(ws)
    run = create(ws, cfg, cfg)
    run.close()
    snap = status(ws)
    assert snap["origin"]["iteration"] == 1 and snap["origin"]["run"] == store.run_id
    shown = invoke("status", ws)
    assert "started from iteration 1 " in shown.stdout
    assert "run.tar.gz" in shown.stdout


def _with_machine(bundle: Path, out: Path, **changes) -> Path:
    """The bundle as a machine with other hardware would have made it."""
    with tarfile.open(bundle) as src, tarfile.open(out, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None
            if member.name.endswith("bundle.json"):
                manifest = json.loads(data)
                manifest["hardware"].update(changes)
                data = json.dumps(manifest).encode()
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
    return out


def test_compare_marks_a_bundle_from_other_hardware(short_run, bundled, tmp_path):
    same = invoke("compare", short_run, bundled, "--json", "--plot", tmp_path / "a.png")
    assert same.exit_code == 0, same.output
    data = json.loads(same.stdout)
    assert len(data["runs"]) == 2 and not data["hardware_differs"]
    assert data["runs"][1]["bundle"] == str(bundled) and data["runs"][1]["hardware"]

    gpu = [{"name": "NVIDIA H100 80GB HBM3", "memory_mb": 81559}]
    elsewhere = _with_machine(bundled, tmp_path / "h100.tar.gz", gpus=gpu, cores=64)
    other = invoke("compare", short_run, elsewhere, "--plot", tmp_path / "b.png")
    assert other.exit_code == 0, other.output
    assert "(other hardware)" in other.stdout
    assert "not comparable budget for budget" in other.stdout
    assert "NVIDIA H100" in other.stdout


def test_a_hostile_bundle_is_refused_in_one_line(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        data = b"pwned"
        member = tarfile.TarInfo("../../outside.txt")
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    result = invoke("status", evil)
    assert result.exit_code == 1
    assert "not an autoresearch bundle" in result.stderr
    assert not (tmp_path.parent / "outside.txt").exists()
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    result = invoke("status", text)
    assert "neither a workspace folder nor an autoresearch bundle" in result.stderr
