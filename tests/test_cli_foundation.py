"""init, doctor and baseline as a user runs them, on the real data with real training."""

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from autoresearch.cli.app import app

cli = CliRunner()
AUTORESEARCH = str(Path(sys.executable).parent / "autoresearch")


def test_init_refuses_to_overwrite(ws):
    result = cli.invoke(app, ["init", str(ws)])
    assert result.exit_code == 1 and "already has" in result.output


def test_doctor_passes_on_a_fresh_workspace(ws):
    result = cli.invoke(app, ["doctor", str(ws), "--agent", "hpo"])
    assert result.exit_code == 0, result.output
    assert list(dict.fromkeys(line.split()[1] for line in result.output.splitlines())) == [
        "workspace:",
        "interpreter:",
        "data:",
        "metric:",
        "sandbox:",
        "agent:",
    ]


def test_doctor_and_baseline_stop_at_once_on_a_wrong_interpreter(ws):
    result = cli.invoke(app, ["doctor", str(ws), "--python", "/nonexistent/python"])
    assert result.exit_code == 1 and "FAIL interpreter" in result.output
    result = cli.invoke(
        app, ["baseline", str(ws), "--python", sys.executable.replace("python", "py")]
    )
    assert result.exit_code == 2 and "interpreter" in result.output and "not found" in result.output


def test_an_interpreter_without_torch_is_refused_before_training(ws, tmp_path):
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    result = cli.invoke(app, ["baseline", str(ws), "--python", str(bare / "bin" / "python")])
    assert result.exit_code == 2  # a refused start
    assert "cannot import torch" in result.output
    assert not (ws / ".autoresearch").exists()  # no training started


def test_missing_data_stops_with_the_three_ways(ws, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTORESEARCH_CACHE_DIR", str(tmp_path / "empty-cache"))
    result = cli.invoke(app, ["doctor", str(ws), "--data-dir", str(tmp_path / "nothing")])
    assert result.exit_code == 1 and "FAIL data" in result.output
    assert "apt-get install dataset-fashion-mnist" in result.output


def test_broken_config_is_one_line_with_exit_2(ws):
    (ws / "autoresearch.toml").write_text("budget_secs = [\n")
    result = cli.invoke(app, ["baseline", str(ws)])
    assert result.exit_code == 2 and "invalid TOML" in result.output
    assert "Traceback" not in result.output


def test_baseline_trains_the_weak_model_on_real_data(ws):
    """The user's command, as a subprocess: the JSON and the trusted score."""
    proc = subprocess.run(
        [AUTORESEARCH, "baseline", str(ws), "--budget", "12", "--json"],
        capture_output=True,
        text=True,
        env=os.environ,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert set(report) == {
        "metric", "self_reported", "value", "metrics", "seed", "status", "reason",
        "train_seconds", "wall_seconds", "peak_memory_mb", "log",
    }  # fmt: skip
    assert report["status"] == "ok" and report["metric"] == "val_accuracy"
    assert report["self_reported"] is False  # scored here, from the predictions
    assert report["seed"] == 0 and 0.75 < report["metrics"]["holdout_val_accuracy"] < 0.87
    assert 0.75 < report["value"] < 0.87  # the linear baseline: ~82-85% once it has a few epochs
    assert report["train_seconds"] <= 12 + 1  # it stopped itself, well before the grace window
    assert report["peak_memory_mb"] > 50
    assert "epoch 1" in Path(report["log"]).read_text()


def test_baseline_ignores_a_metric_that_train_py_prints(ws):
    (ws / "train.py").write_text(
        "import numpy as np, prepare\n"
        "print('val_accuracy: 0.999')\n"
        "prepare.save_predictions(np.zeros(10000, dtype=np.int64))\n"
    )
    result = cli.invoke(app, ["baseline", str(ws), "--budget", "5", "--json"])
    report = json.loads(result.stdout)
    assert report["status"] == "ok" and report["value"] == 0.1  # one class of ten, truthfully


def test_baseline_reports_a_crash_and_a_timeout(ws):
    (ws / "train.py").write_text("raise RuntimeError('boom in train.py')\n")
    report = json.loads(cli.invoke(app, ["baseline", str(ws), "--json"]).stdout)
    assert report["status"] == "crash" and "boom in train.py" in report["reason"]
    (ws / "train.py").write_text("import time\ntime.sleep(60)\n")
    result = cli.invoke(app, ["baseline", str(ws), "--budget", "1", "--grace", "1", "--json"])
    report = json.loads(result.stdout)
    assert result.exit_code == 1 and report["status"] == "timeout" and report["value"] is None


def test_the_orchestrator_never_imports_torch(ws):
    """Only the training interpreter needs torch: a run, scoring and every agent module load
    without it."""
    code = (
        "import sys, autoresearch.cli.app, autoresearch.loop.loop, autoresearch.views.report, autoresearch.training.task\n"
        "import autoresearch.agents.factory, autoresearch.agents.hpo, autoresearch.agents.llm\n"
        "import autoresearch.agents.command, autoresearch.agents.replay\n"
        f"m = autoresearch.training.task.load_prepare(__import__('pathlib').Path({str(ws)!r}))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
