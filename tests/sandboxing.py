"""For the sandbox's tests: skip where bubblewrap cannot work (never on CI), clean up what
training made, and a run of the loop in a given sandbox mode."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autoresearch.cli.app import app
from autoresearch.training import limits, sandbox

# CI installs bubblewrap (scripts/bootstrap): there a missing sandbox fails these tests.
SANDBOXED = [
    pytest.mark.skipif(
        sandbox.probe() is not None and not os.environ.get("CI"),
        reason=f"bubblewrap does not work here: {sandbox.probe()}",
    ),
    pytest.mark.usefixtures("sandboxed_training"),
]


def val_labels_cache() -> Path:
    return Path(os.environ["AUTORESEARCH_CACHE_DIR"]) / "fashion-mnist" / "v1" / "val_labels.npy"


def without_cgroups(monkeypatch, backend: str) -> None:
    """backend "fallback": as on a machine where no cgroup can be made (rlimits + watchdog)."""
    if backend == "fallback":
        monkeypatch.setattr(limits, "_mounts", dict)


BASELINE = """\
import numpy as np
import prepare

prepare.save_predictions(np.zeros(10000, dtype=np.int64))
"""


def run_loop(ws: Path, mode: str, agent: list[str]) -> dict:
    (ws / "train.py").write_text(BASELINE)
    args = ["run", str(ws), "--budget", "10", "--grace", "2", "--sandbox", mode, *agent]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    status = CliRunner().invoke(app, ["status", str(ws), "--json"])
    return json.loads(status.output)
