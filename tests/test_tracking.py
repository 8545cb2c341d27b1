"""MLflow tracking ([tracking] mlflow = URI): a real run logged to a real MLflow tracking server
(started here on loopback, with a SQLite backend), a server that is down (one warning, the run
goes on, and a resume catches up), and a file store; a resume logs only what is new."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import _set, one_epoch, single_run
from typer.testing import CliRunner

from autoresearch.cli.app import app
from autoresearch.core.config import Config
from autoresearch.core.records import Iteration, TrainingRun
from autoresearch.store.store import Store, list_runs

mlflow = pytest.importorskip("mlflow", reason="pip install 'autoresearch[mlflow]'")
from mlflow.tracking import MlflowClient  # noqa: E402

cli = CliRunner()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`mlflow server` on loopback with a SQLite backend (it takes a minute to start here)."""
    pytest.importorskip("mlflow.server", reason="the server test needs the mlflow package")
    pytest.importorskip("flask", reason="the server test needs the mlflow package")
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts")],
        stdout=open(root / "server.log", "w"), stderr=subprocess.STDOUT, start_new_session=True,
        cwd=root,  # what it writes to a relative place (./mlruns) stays in the test's folder
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as reply:
                if reply.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError((root / "server.log").read_text()[-2000:])
        time.sleep(1)
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)


def children(uri: str, experiment: str = "autoresearch") -> list:
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id]) if found else []
    return [r for r in runs if "mlflow.parentRunId" in r.data.tags]


def track(ws: Path, uri: str) -> None:
    text = (ws / "autoresearch.toml").read_text().split("\n[tracking]")[0]
    (ws / "autoresearch.toml").write_text(f'{text}\n[tracking]\nmlflow = "{uri}"\n')


def test_a_run_is_logged_to_a_tracking_server_and_a_resume_catches_up(ws, tmp_path, server):
    single_run(ws)
    one_epoch(ws)
    proposals = tmp_path / "proposals"
    proposals.mkdir()
    base = (ws / "train.py").read_text()
    for n, hidden in enumerate((64, 128, 32), start=1):
        (proposals / f"{n:03d}-hidden.py").write_text(_set(base, HIDDEN_UNITS=hidden))
        (proposals / f"{n:03d}-hidden.md").write_text(f"Hidden {hidden}\n\nWider or narrower.")
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    track(ws, down)
    argv = ["run", str(ws), "--agent", "replay", "--replay-dir", str(proposals)]
    argv += ["--budget", "60", "--grace", "30"]
    first = cli.invoke(app, [*argv, "--iterations", "1"])
    assert first.exit_code == 0, first.output
    warnings = [line for line in first.stderr.splitlines() if "warning: mlflow" in line]
    assert len(warnings) == 1 and down in warnings[0]  # once, not per iteration
    store = Store(list_runs(ws)[0], readonly=True)
    assert store.recorded() == 2 and not (store.get("mlflow") or {}).get("logged")
    store.close()

    track(ws, server)  # up now: the resume logs what was missed, then what is new
    second = cli.invoke(app, [*argv, "--iterations", "2"])
    assert second.exit_code == 0, second.output
    third = cli.invoke(app, [*argv, "--iterations", "3"])
    assert third.exit_code == 0, third.output
    found = children(server)
    assert sorted(int(r.data.params["iteration"]) for r in found) == [0, 1, 2, 3]  # each once
    store = Store(list_runs(ws)[0], readonly=True)
    history = {it.iteration: it for it in store.iterations(full=True)}
    client = MlflowClient(server)
    parents = {r.data.tags["mlflow.parentRunId"] for r in found}
    assert parents == {store.get("mlflow")["parent"]}
    assert client.get_run(parents.pop()).info.run_name == store.run_id
    for r in found:
        it = history[int(r.data.params["iteration"])]
        assert r.data.metrics["val_accuracy"] == pytest.approx(it.value)
        assert r.data.metrics["train_seconds"] == pytest.approx(it.train_seconds)
        assert "holdout_val_accuracy" in r.data.metrics and "peak_memory_mb" in r.data.metrics
        assert r.data.tags["status"] == it.status
        assert r.data.tags["parent"] == ("" if it.parent is None else str(it.parent))
        assert r.data.params["agent"] == it.agent and r.data.params["seed"] == str(it.runs[0].seed)
        assert r.data.params["description"] == it.description
        names = {a.path for a in client.list_artifacts(r.info.run_id)}
        assert {"train.py", "train.log"} <= names
        assert ("diff.patch" in names) == bool(it.diff)
        local = client.download_artifacts(r.info.run_id, "train.py", str(tmp_path))
        assert Path(local).read_text() == it.train_py


def _record(store: Store, n: int, log_dir: Path) -> None:
    log = log_dir / f"{n}.log"
    log.write_text(f"epoch 1: loss 0.{n}\n")
    run = TrainingRun("ok", 0.8 + n / 100, None, 1.5, 2.0, 300.0, str(log), seed=n,
                      metrics={"holdout_val_accuracy": 0.79})  # fmt: skip
    store.record_run(n, 0, run)
    status = "baseline" if n == 0 else "keep"
    store.record(Iteration(n, status, run.value, explanation=f"change {n}", train_py=f"x = {n}\n",
                           diff=f"-x = {n - 1}\n+x = {n}\n", parent=n - 1 if n else None))  # fmt: skip


def test_a_file_store_and_a_resume_that_logs_only_what_is_new(tmp_path):
    folder = tmp_path / "ws" / ".autoresearch" / "runs" / "r1"
    cfg = Config.model_validate({"tracking": {"mlflow": "mlruns", "experiment": "fm"}})
    store = Store.create(folder, cfg.model_dump())
    for n in range(3):
        _record(store, n, tmp_path)
    store.close()
    uri = str(tmp_path / "ws" / "mlruns")  # a folder relative to the workspace
    assert (tmp_path / "ws" / "mlruns").is_dir()
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    assert sorted(r.data.params["iteration"] for r in children(uri, "fm")) == ["0", "1", "2"]
    resumed = Store(folder)  # a resume opens the store again
    _record(resumed, 3, tmp_path)
    found = children(uri, "fm")
    assert sorted(r.data.params["iteration"] for r in found) == ["0", "1", "2", "3"]
    assert {r.data.tags["status"] for r in found} == {"baseline", "keep"}
