"""doctor proves the interpreter is Python and cleans up after it; BOMs are Python's; a score
that is not a finite number is a crash; JSON output is strict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from autoresearch.checks import preflight
from autoresearch.core import config
from autoresearch.core.records import Iteration
from autoresearch.store.layout import runs_dir
from autoresearch.store.store import Store
from autoresearch.training import task

AUTORESEARCH = str(Path(sys.executable).parent / "autoresearch")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([AUTORESEARCH, *args], capture_output=True, text=True, timeout=300)


def line(output: str, name: str) -> str:
    return next(x for x in output.splitlines() if f" {name}: " in x)


def test_an_interpreter_that_is_not_python_fails_doctor(ws):
    proc = cli("doctor", str(ws), "--python", "/bin/true")
    assert proc.returncode == 1
    assert line(proc.stdout, "interpreter").startswith("FAIL interpreter: ")
    assert "is not Python 3" in line(proc.stdout, "interpreter")


def test_doctor_kills_what_the_interpreter_left_running_and_does_not_wait_for_it(ws, tmp_path):
    """A wrapper that starts a long-lived child, then runs the real Python: doctor passes at
    once and the child is gone."""
    pid_file = tmp_path / "child.pid"
    wrapper = tmp_path / "python-wrapper"
    wrapper.write_text(
        f'#!/bin/sh\nsleep 300 &\necho $! > {pid_file}\nexec {sys.executable} "$@"\n'
    )
    wrapper.chmod(0o755)
    started = time.monotonic()
    proc = cli("doctor", str(ws), "--python", str(wrapper))
    assert time.monotonic() - started < 60  # not the 180 s of a pipe held open by the child
    assert line(proc.stdout, "interpreter").startswith("ok   interpreter: ")
    assert "(Python 3." in line(proc.stdout, "interpreter")
    child = int(pid_file.read_text())
    try:
        assert psutil.Process(child).status() == psutil.STATUS_ZOMBIE  # killed, not yet reaped
    except psutil.NoSuchProcess:
        pass  # killed and reaped


def test_files_with_a_utf8_bom_pass_doctor_and_train(ws):
    code = "import numpy as np\nimport prepare\nprepare.save_predictions(np.zeros(10000, dtype=np.int64))\n"
    (ws / "train.py").write_bytes(b"\xef\xbb\xbf" + code.encode())
    (ws / "program.md").write_bytes(b"\xef\xbb\xbfGoal: accuracy.\n")
    (ws / "prepare.py").write_bytes(b"\xef\xbb\xbf" + (ws / "prepare.py").read_bytes())
    proc = cli("doctor", str(ws))
    assert line(proc.stdout, "workspace").startswith("ok   workspace: "), proc.stdout
    baseline = cli("baseline", str(ws), "--budget", "5", "--json")
    assert json.loads(baseline.stdout)["status"] == "ok", baseline.stdout


def test_a_train_py_that_python_cannot_decode_fails_doctor(ws):
    (ws / "train.py").write_bytes(b"x = '\xff'\n")
    proc = cli("doctor", str(ws))
    assert line(proc.stdout, "workspace").startswith(
        "FAIL workspace: train.py is not UTF-8 (byte 0xff at offset 5); "
    )


def test_a_score_that_is_not_finite_is_a_crash_with_its_reason(tmp_path, cfg):
    task_dir = tmp_path / "task"
    task_dir.mkdir()
    (task_dir / "prepare.py").write_text(
        "import numpy as np\ndef score(path):\n    return float(np.load(path)[0])\n"
    )
    for value, shown in ((np.inf, "inf"), (-np.inf, "-inf"), (np.nan, "nan")):
        predictions = tmp_path / f"{shown}.npy"
        np.save(predictions, np.array([value]))
        assert task.score(task_dir, cfg, predictions) == (
            None,
            f"bad predictions: the score is {shown} (not a finite number)",
        )
    np.save(tmp_path / "ok.npy", np.array([0.5]))
    assert task.score(task_dir, cfg, tmp_path / "ok.npy") == ({"val_accuracy": 0.5}, None)


def test_status_json_is_strict_json_even_for_an_older_run_with_infinity(ws):
    store = Store.create(runs_dir(ws) / "old", config.load(ws).model_dump())
    store.record(Iteration(iteration=0, status="baseline", value=float("inf"), explanation="b"))
    store.record(Iteration(iteration=1, status="discard", value=float("nan"), explanation="d"))
    store.close()
    proc = cli("status", str(ws), "--json")
    assert proc.returncode == 0, proc.stderr

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    snap = json.loads(proc.stdout, parse_constant=refuse)
    assert [it["value"] for it in snap["iterations"]] == [None, None]
    assert snap["best"]["value"] is None
    assert os.path.isfile(store.dir / "run.db")


def test_an_interpreter_that_hangs_is_stopped_and_killed(ws, cfg, tmp_path, monkeypatch):
    pid_file = tmp_path / "hang.pid"
    hang = tmp_path / "hang"
    hang.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 300\n")
    hang.chmod(0o755)
    monkeypatch.setattr(preflight, "PROBE_TIMEOUT_SECS", 2)
    cfg.python = str(hang)
    started = time.monotonic()
    with pytest.raises(ValueError, match="did not answer in 2 s"):
        preflight.check_interpreter(ws, cfg)
    assert time.monotonic() - started < 30
    assert not psutil.pid_exists(int(pid_file.read_text()))  # killed and reaped
