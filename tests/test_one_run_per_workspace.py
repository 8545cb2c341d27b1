"""One `autoresearch run` per workspace at a time: a second start, new run or resume, is refused in
one line naming the running one; an orchestrator killed with SIGKILL blocks no later start.

Two real orchestrators, each its own process; train.py is clirun's tiny numpy script."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import pytest
from clirun import AUTORESEARCH, Cli, alive, inflight, status, train_script, wait_until

from autoresearch.store.store import list_runs

pytestmark = pytest.mark.usefixtures("known_labels", "reaper")


def start(ws: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [AUTORESEARCH, "run", str(ws), *args], capture_output=True, text=True, timeout=120
    )


def baseline_only(tmp_path: Path) -> list[str]:
    """Flags for a run of the baseline alone (the replay agent is asked for nothing), unsandboxed:
    the hanging train.py waits on a file in the host's /tmp, which bubblewrap hides."""
    props = tmp_path / "proposals"
    props.mkdir(exist_ok=True)
    (props / "001-p.py").write_text(train_script(2000, 0))
    return ["--agent", "replay", "--replay-dir", str(props), "--iterations", "0", "--grace", "1",
            "--sandbox", "none"]  # fmt: skip


@pytest.fixture
def busy(ws, tmp_path):
    """A run whose baseline trains until tmp_path/release exists; returned once it trains."""
    (ws / "train.py").write_text(train_script(0, 0, wait_for=tmp_path / "release"))
    first = Cli(ws, *baseline_only(tmp_path), "--budget", "60")
    first.wait_for(r"^iteration 0: training")
    wait_until(lambda: (tmp_path / "release.started").exists())
    return first


def test_a_second_run_while_one_trains_is_refused_in_one_line(ws, tmp_path, busy):
    run_id = list_runs(ws)[0].name
    flags = baseline_only(tmp_path)
    for args in (["--new", *flags], ["--new", *flags, "--budget", "5"], [], ["--new"]):
        second = start(ws, *args)
        assert second.returncode == 2, second.stderr  # a refused start: nothing trained
        assert second.stdout == "" and len(second.stderr.strip().splitlines()) == 1
        line = second.stderr.strip()
        assert line.startswith(f"error: run {run_id} is already running in {ws} ")
        assert re.search(rf"\(pid {busy.proc.pid}, since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\)", line)
        assert f"kill {busy.proc.pid}" in line
    assert [p.name for p in list_runs(ws)] == [run_id]  # no second run was created
    assert status(ws)["state"] == "running"

    (tmp_path / "release").touch()
    assert busy.finish() == 0, busy.seen
    assert [it["status"] for it in status(ws)["iterations"]][0] == "baseline"
    # once it has ended, a new run starts
    again = start(ws, "--new", *baseline_only(tmp_path), "--budget", "5")
    assert again.returncode == 0, again.stderr
    assert len(list_runs(ws)) == 2


def test_a_sigkilled_run_blocks_no_later_start(ws, tmp_path, busy):
    wait_until(lambda: (inflight(ws) or {}).get("iteration") == 0)
    training = inflight(ws)["pid"]
    busy.kill(signal.SIGKILL)  # the orchestrator only: its training is left behind
    assert busy.finish() == -signal.SIGKILL
    assert alive(training)
    assert (ws / ".autoresearch" / "lock").is_file()  # its holder's name is still written there

    again = start(ws, "--new", *baseline_only(tmp_path), "--budget", "5")
    assert again.returncode == 0, again.stderr
    assert "killed process" in again.stderr and not alive(training)
    assert len(list_runs(ws)) == 2
    assert status(ws)["state"] == "finished"
