"""Choosing the sandbox: auto falls back with a warning on every run and in doctor, bwrap refuses
to start without it, and an interpreter the sandbox cannot run stops a run before any training."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autoresearch.cli.app import app
from autoresearch.training import sandbox

cli = CliRunner()
BASELINE = (
    "import numpy as np, prepare\nprepare.save_predictions(np.zeros(10000, dtype=np.int64))\n"
)
# What bubblewrap prints where user namespaces are blocked (e.g. unprivileged Docker).
BLOCKED = (
    "bwrap: No permissions to creating new namespace, likely because the kernel does not allow "
    "non-privileged user namespaces."
)


@pytest.fixture
def probe_again():
    sandbox.probe.cache_clear()
    sandbox.boundary.cache_clear()
    yield
    sandbox.probe.cache_clear()
    sandbox.boundary.cache_clear()


@pytest.fixture
def no_bwrap(tmp_path, monkeypatch, probe_again):
    """A PATH with the tools a run needs (python, git, sleep) but no bwrap."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("git", "sleep", "true"):
        found = next(
            Path(d) / tool
            for d in os.environ["PATH"].split(os.pathsep)
            if (Path(d) / tool).exists()
        )
        (bin_dir / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


@pytest.fixture
def broken_bwrap(no_bwrap):
    fake = no_bwrap / "bwrap"
    fake.write_text(f"#!/bin/sh\necho '{BLOCKED}' >&2\nexit 1\n")
    fake.chmod(0o755)


def sandbox_line(output: str) -> str:
    return next(line for line in output.splitlines() if " sandbox: " in line)


def test_doctor_with_auto_and_no_bwrap_warns(ws, no_bwrap):
    result = cli.invoke(app, ["doctor", str(ws), "--agent", "hpo"])
    line = sandbox_line(result.output)
    assert line.startswith("ok   sandbox: WARNING: training runs UNSANDBOXED: ")
    assert "bubblewrap (bwrap) is not installed" in line and "apt-get install bubblewrap" in line


def test_doctor_names_the_blocked_namespaces(ws, broken_bwrap):
    result = cli.invoke(app, ["doctor", str(ws), "--agent", "hpo", "--sandbox", "bwrap"])
    assert result.exit_code == 1
    line = sandbox_line(result.output)
    assert line.startswith('FAIL sandbox: sandbox = "bwrap", but bwrap cannot create namespaces')
    assert "non-privileged user namespaces" in line


def test_run_with_bwrap_required_and_missing_stops_before_training(ws, no_bwrap):
    result = cli.invoke(app, ["run", str(ws), "--agent", "hpo", "--sandbox", "bwrap"])
    assert result.exit_code != 0
    assert 'sandbox = "bwrap", but bubblewrap (bwrap) is not installed' in result.output
    assert not (ws / ".autoresearch" / "runs").exists()  # nothing trained, no run made


def test_run_with_auto_and_no_bwrap_warns_and_trains(ws, no_bwrap, tmp_path):
    proposals = tmp_path / "proposals"
    proposals.mkdir()
    (proposals / "001-same.py").write_text(BASELINE + "\n")
    (ws / "train.py").write_text(BASELINE)
    args = ["run", str(ws), "--agent", "replay", "--replay-dir", str(proposals), "--budget", "10"]
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (
        "warning: training runs UNSANDBOXED: bubblewrap (bwrap) is not installed" in result.output
    )


@pytest.mark.skipif(sandbox.probe() is not None and not os.environ.get("CI"), reason="no bwrap")
def test_an_interpreter_the_sandbox_cannot_run_is_one_line_before_training(ws, tmp_path):
    # A shim (like pyenv's) that runs an interpreter found through a folder the sandbox hides.
    hidden = tmp_path / "tools"
    (hidden / "libexec").mkdir(parents=True)
    (hidden / "libexec" / "python").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    (hidden / "libexec" / "python").chmod(0o755)
    shim = hidden / "python"
    shim.write_text('#!/bin/sh\nexec "$(dirname "$0")/libexec/python" "$@"\n')
    shim.chmod(0o755)
    args = ["run", str(ws), "--agent", "hpo", "--python", str(shim), "--sandbox", "bwrap"]
    result = cli.invoke(app, args)
    assert result.exit_code != 0
    message = result.output.strip()
    assert message.startswith(f"error: sandbox: the training interpreter {shim} cannot import")
    assert 'or set sandbox = "none"' in message and len(message.splitlines()) == 1
    assert not (ws / ".autoresearch" / "runs").exists()
