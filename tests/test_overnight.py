"""A run left overnight, as a user drives it through the console script: resume that remembers,
signals handled like Ctrl-C, early stops, leftovers killed at any start, the way out (export).

train.py is a tiny numpy script (clirun.train_script), so an iteration costs about a second.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest
from clirun import (
    AUTORESEARCH,
    Cli,
    alive,
    inflight,
    processes_in,
    run_dir,
    status,
    train_script,
    wait_until,
)

pytestmark = pytest.mark.usefixtures("known_labels", "reaper")

FAST = ["--budget", "3", "--grace", "1"]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [AUTORESEARCH, *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def proposals(tmp_path: Path, *scripts: str) -> Path:
    folder = tmp_path / "proposals"
    folder.mkdir()
    for k, script in enumerate(scripts, start=1):
        (folder / f"{k:03d}-p.py").write_text(script)
    return folder


def crashing(exception: str, message: str) -> str:
    return f"raise {exception}({message!r})\n"


# --- resume remembers; SIGTERM and SIGHUP are Ctrl-C -----------------------------------------------


@pytest.fixture
def unsandboxed(ws):
    """These trainings hang on a file in the host's /tmp, which bubblewrap hides; and what they
    check (a leftover found and killed) only arises unsandboxed: under bubblewrap the training
    dies with its orchestrator (--die-with-parent)."""
    path = ws / "autoresearch.toml"
    path.write_text('sandbox = "none"\n' + path.read_text())


@pytest.mark.usefixtures("unsandboxed")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_stops_like_ctrl_c_and_a_bare_run_resumes_as_started(ws, tmp_path, sig):
    (ws / "train.py").write_text(train_script(0, 0))
    props = proposals(
        tmp_path,
        train_script(2000, 0),
        train_script(0, 1, wait_for=tmp_path / "release"),  # hangs the first time
        train_script(4000, 0),
    )
    flags = ["--agent", "replay", "--replay-dir", str(props), "--iterations", "3", *FAST]
    run = Cli(ws, *flags)
    run.wait_for(r"^iteration 2: training")
    wait_until(lambda: (tmp_path / "release.started").exists())
    wait_until(lambda: (inflight(ws) or {}).get("iteration") == 2)
    training = inflight(ws)["pid"]
    run.kill(sig)
    assert run.finish() == 128 + sig  # 143 for SIGTERM, 129 for SIGHUP
    name = signal.Signals(sig).name
    assert f"run {run_dir(ws).name} interrupted: interrupted by {name}" in run.seen
    assert f"resume: autoresearch run {ws}" in run.seen
    assert not alive(training) and processes_in(ws) == []  # the training tree was killed
    snap = status(ws)
    assert (snap["state"], snap["stop_reason"]) == ("interrupted", f"interrupted by {name}")
    assert [it["iteration"] for it in snap["iterations"]] == [0, 1]
    assert f"interrupted by {name}" in (run_dir(ws) / "report.md").read_text()
    log = (run_dir(ws) / "orchestrator.log").read_text()
    assert f"interrupted: interrupted by {name}" in log and "iteration 1: keep" in log

    # A different budget is refused with the two commands that work; nothing runs.
    refused = cli("run", str(ws), "--budget", "7")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip() == (
        f"error: run {run_dir(ws).name} was started with --budget 3, not --budget 7; "
        f"to resume it as started: `autoresearch run {ws}`; "
        f"to start a new run with yours: `autoresearch run {ws} --new --budget 7`"
    )
    refused = cli("run", str(ws), "--agent", "hpo", "--iterations", "4")
    assert refused.returncode == 2
    assert "started with --agent replay, not --agent hpo" in refused.stderr
    assert f"`autoresearch run {ws} --iterations 4`" in refused.stderr
    refused = cli("run", str(ws), "--agent", "auto")
    assert refused.returncode == 2 and "started with --agent replay, not --agent auto (" in (
        refused.stderr
    )

    # `autoresearch run` in the workspace, no flags: the same agent, budget and iterations, even
    # though the file now says otherwise.
    with (ws / "autoresearch.toml").open("a") as f:
        f.write("\n[loop]\niterations = 9\n")
    again = cli("run", cwd=ws)
    assert again.returncode == 0, again.stderr
    assert (
        "note: autoresearch.toml changed since this run started (loop.iterations); the run keeps "
        "its own settings (--new starts a run with the file's)"
    ) in again.stderr
    assert "run " + run_dir(ws).name + ": resuming after iteration 1" in again.stderr
    assert "settings: agent replay, 3 iterations, budget 3s + 1s grace" in again.stderr
    assert "run " + run_dir(ws).name + " finished: 3 iterations done" in again.stderr
    snap = status(ws)
    assert [it["status"] for it in snap["iterations"]] == ["baseline", "keep", "discard", "keep"]
    assert [(it["agent"], it["model"]) for it in snap["iterations"]] == [("", "")] + [
        ("replay", "")
    ] * 3

    # A finished run says how to go on.
    done = cli("run", str(ws))
    assert done.returncode == 0
    assert (
        "note: it had finished (3 iterations done); --iterations or --max-cost goes on, --new "
        "starts another run"
    ) in done.stderr

    # Iterations may change on resume, and the run says so.
    more = cli("run", str(ws), "--iterations", "4")
    assert "changed: --iterations 3 -> 4" in more.stderr
    assert len(list((ws / ".autoresearch" / "runs").iterdir())) == 1


# --- early stops ----------------------------------------------------------------------------------


def test_a_crashing_baseline_stops_the_run_with_its_reason_and_log_tail(ws, tmp_path):
    (ws / "train.py").write_text("print('loading')\nmodel = undefined_name\n")
    props = proposals(tmp_path, train_script(2000, 0))
    result = cli("run", str(ws), "--agent", "replay", "--replay-dir", str(props), *FAST)
    assert result.returncode == 3, result.stderr  # an early stop
    reason = "exit code 1: NameError: name 'undefined_name' is not defined"
    assert f"stopped: the baseline failed ({reason}); fix train.py" in result.stderr
    assert "  | loading" in result.stderr  # the end of its log
    assert "  | NameError: name 'undefined_name' is not defined" in result.stderr
    assert "iteration 1" not in result.stderr  # no experiment started from it
    assert result.stderr.splitlines()[-2] == f"start again: autoresearch run {ws} --new"
    assert "export" not in result.stderr  # there is nothing better to export
    assert "- baseline: none; best: none yet" in (run_dir(ws) / "report.md").read_text()
    snap = status(ws)
    assert snap["state"] == "stopped" and [it["status"] for it in snap["iterations"]] == ["crash"]
    table = cli("status", str(ws)).stdout
    assert "at iteration None" not in table and "no score yet" in table

    # Resuming it would start every experiment from a broken train.py: the command that works.
    again = cli("run", str(ws))
    assert again.returncode == 2
    assert f"fix train.py, then start a new run: autoresearch run {ws} --new" in again.stderr


def test_the_same_failure_again_and_again_stops_the_run_which_stays_resumable(ws, tmp_path):
    (ws / "train.py").write_text(train_script(0, 0))
    with (ws / "autoresearch.toml").open("a") as f:
        f.write("\n[loop]\nmax_consecutive_failures = 2\nrepairs = 0\n")  # each crash stands
    props = proposals(
        tmp_path,
        crashing("ValueError", "bad shape 3"),
        crashing("KeyError", "lr"),  # a different failure: the count starts again
        crashing("KeyError", "momentum"),  # the same kind, other details: two in a row
        crashing("KeyError", "wd"),
        train_script(2000, 0),
    )
    flags = ["--agent", "replay", "--replay-dir", str(props), "--iterations", "5", *FAST]
    result = cli("run", str(ws), *flags)
    assert result.returncode == 3, result.stderr
    snap = status(ws)
    assert snap["state"] == "stopped"
    assert [it["status"] for it in snap["iterations"]] == ["baseline", "crash", "crash", "crash"]
    assert snap["stop_reason"].startswith("2 iterations in a row failed the same way (crash: ")
    assert "KeyError: 'momentum'" in snap["stop_reason"]
    assert "run again to resume" in snap["stop_reason"]

    # Resumed: the same failure once more stops it at once; then it goes on.
    again = cli("run", str(ws))
    assert again.returncode == 3
    assert "3 iterations in a row failed the same way" in again.stderr
    assert len(status(ws)["iterations"]) == 5
    last = cli("run", str(ws))
    assert last.returncode == 0, last.stderr
    assert [it["status"] for it in status(ws)["iterations"]][-1] == "keep"


# --- leftovers: any start kills what a dead orchestrator left training -----------------------------


@pytest.mark.usefixtures("unsandboxed")
@pytest.mark.parametrize("start", [["run"], ["run", "--new"], ["baseline", "--json"]])
def test_any_start_kills_the_training_a_killed_orchestrator_left(ws, tmp_path, start):
    (ws / "train.py").write_text(train_script(0, 0, wait_for=tmp_path / "release"))
    props = proposals(tmp_path, train_script(2000, 0))
    flags = ["--agent", "replay", "--replay-dir", str(props), "--iterations", "1", *FAST]
    run = Cli(ws, *flags)
    run.wait_for(r"^iteration 0: training the baseline")
    wait_until(lambda: (tmp_path / "release.started").exists())
    wait_until(lambda: (inflight(ws) or {}).get("iteration") == 0)
    run.kill()
    assert run.finish() == -signal.SIGKILL
    leftover = inflight(ws)["pid"]
    assert alive(leftover)

    extra = flags if start[0] == "run" else FAST
    result = cli(*start, str(ws), *extra)
    assert result.returncode == 0, result.stderr
    assert not alive(leftover)
    if start == ["run"]:
        assert f"killed process {leftover}, left running" in result.stderr
        assert "its baseline had not finished, so it trains again" in result.stderr
        assert "resuming after iteration -1" not in result.stderr
    if start[0] == "baseline":
        assert json.loads(result.stdout)["status"] == "ok"


# --- the way out -----------------------------------------------------------------------------------


def test_export_writes_the_best_or_a_given_train_py(ws, tmp_path):
    baseline, better = train_script(0, 0), train_script(3000, 0)
    (ws / "train.py").write_text(baseline)
    with open(ws / "autoresearch.toml", "a") as f:  # decisions on all 10,000: a known value
        f.write("\nholdout = false\n[loop]\nrepairs = 0\n")  # (the crash stands)
    props = proposals(tmp_path, better, crashing("RuntimeError", "nope"), train_script(0, 2))
    flags = ["--agent", "replay", "--replay-dir", str(props), "--iterations", "3", *FAST]
    result = cli("run", str(ws), *flags)
    assert result.returncode == 0, result.stderr
    assert "best val_accuracy 0.3698 at iteration 1 (baseline 0.1000, +0.2698)" in result.stderr
    assert f"the best train.py: autoresearch export {ws}" in result.stderr

    exported = cli("export", str(ws))
    assert exported.returncode == 0 and exported.stdout == better
    assert "iteration 1 of run" in exported.stderr
    assert cli("export", str(ws), "--iteration", "0").stdout == baseline
    written = cli("export", "--iteration", "3", "-o", str(tmp_path / "third.py"), cwd=ws)
    assert written.returncode == 0, written.stderr
    assert (tmp_path / "third.py").read_text() == train_script(0, 2)

    missing = cli("export", str(ws), "--iteration", "9")
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.strip().endswith("has no iteration 9 (it has 0 to 3)")
    shown = " ".join(cli("status", str(ws), "--run", run_dir(ws).name).stdout.split())
    assert f"autoresearch export {ws} --run {run_dir(ws).name}" in shown  # wrapped to the width
    assert (
        f"autoresearch export {ws} --run {run_dir(ws).name}"
        in (run_dir(ws) / "report.md").read_text()
    )


# --- messages --------------------------------------------------------------------------------------


def test_version_and_flag_errors_name_the_flag(ws):
    version = cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("autoresearch 0.")
    for flag, value, words in [
        ("--budget", "-5", "greater than 0"),
        ("--budget", "1e308", "less than or equal to 604800"),
        ("--budget", "inf", "finite number"),
        ("--iterations", "-1", "greater than or equal to 0"),
    ]:
        result = cli("run", str(ws), flag, value)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        [line] = result.stderr.splitlines()
        assert line.startswith(f"error: {flag} {value.replace('1e308', '1e+308')}: ")
        assert words in line and "autoresearch.toml" not in line
    with (ws / "autoresearch.toml").open("a") as f:
        f.write("loop = 5\n")  # a key where a table belongs, and a flag for that table
    result = cli("run", str(ws), "--iterations", "3")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert "autoresearch.toml, line " in line and "loop: Input should be a valid dictionary" in line
    assert not (ws / ".autoresearch").exists()


def test_baseline_json_is_always_printed(ws):
    (ws / "train.py").write_text("def broken(:\n")
    result = cli("baseline", str(ws), "--json")
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["status"] == "error" and "train.py line 1" in report["reason"]
    (ws / "train.py").write_text("raise SystemExit(4)\n")
    result = cli("baseline", "--json", *FAST, cwd=ws)
    assert result.returncode == 1
    assert json.loads(result.stdout)["status"] == "crash"


@pytest.mark.usefixtures("unsandboxed")
def test_sigterm_stops_a_baseline_and_its_training(ws, tmp_path):
    (ws / "train.py").write_text(train_script(0, 0, wait_for=tmp_path / "release"))
    proc = subprocess.Popen(
        [AUTORESEARCH, "baseline", str(ws), "--json", "--budget", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: (tmp_path / "release.started").exists())
        assert processes_in(ws)  # training
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 143
    report = json.loads(stdout)
    assert (report["status"], report["reason"]) == ("interrupted", "interrupted by SIGTERM")
    assert processes_in(ws) == []


def test_a_run_stored_before_agent_and_model_were_recorded_opens_and_resumes(ws, tmp_path):
    (ws / "train.py").write_text(train_script(0, 0))
    props = proposals(tmp_path, train_script(2000, 0), train_script(3000, 0))
    flags = ["--agent", "replay", "--replay-dir", str(props), "--iterations", "1", *FAST]
    assert cli("run", str(ws), *flags).returncode == 0
    with closing(sqlite3.connect(run_dir(ws) / "run.db")) as db:  # as an older release left it
        db.execute("ALTER TABLE iterations DROP COLUMN agent")
        db.execute("ALTER TABLE iterations DROP COLUMN model")
        db.execute("DROP TABLE training_runs")
        db.execute("DROP TABLE strategies")
        for table in ("pending", "training", "live"):  # what is under way (schema 4)
            db.execute(f"DROP TABLE {table}")
        db.execute("ALTER TABLE iterations DROP COLUMN strategy")
        db.execute("PRAGMA user_version = 0")  # before the schema had versions
        db.commit()

    result = cli("run", str(ws), "--iterations", "2")
    assert result.returncode == 0, result.stderr
    its = status(ws)["iterations"]
    assert [it["status"] for it in its] == ["baseline", "keep", "keep"]
    assert [it["agent"] for it in its][1:] == [None, "replay"]
    table = cli("status", str(ws)).stdout
    assert "agents: unknown (iteration 1); replay (iteration 2)" in table


@pytest.mark.usefixtures("unsandboxed")
def test_a_start_kills_the_training_a_killed_baseline_left(ws, tmp_path):
    (ws / "train.py").write_text(train_script(0, 0, wait_for=tmp_path / "release"))
    proc = subprocess.Popen(
        [AUTORESEARCH, "baseline", str(ws), "--budget", "60"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: (tmp_path / "release.started").exists())
        proc.kill()
        proc.wait()
        [leftover] = processes_in(ws)  # the training outlived its orchestrator
        again = cli("baseline", str(ws), "--json", *FAST)
        assert again.returncode == 0, again.stderr
        assert not alive(leftover.pid)
    finally:
        proc.kill()


@pytest.mark.usefixtures("unsandboxed")
def test_under_nohup_a_hangup_does_not_stop_the_run(ws, tmp_path):
    (ws / "train.py").write_text(train_script(0, 0, wait_for=tmp_path / "release"))
    props = proposals(tmp_path, train_script(2000, 0))
    flags = ["--agent", "replay", "--replay-dir", str(props), "--iterations", "1", *FAST]
    proc = subprocess.Popen(
        ["nohup", AUTORESEARCH, "run", str(ws), *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: (tmp_path / "release.started").exists())
        proc.send_signal(signal.SIGHUP)
        (tmp_path / "release").touch()
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert [it["status"] for it in status(ws)["iterations"]] == ["baseline", "keep"]
