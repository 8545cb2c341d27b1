"""A whole research loop on real Fashion-MNIST with the replay agent: keep, discard, crash,
invalid; and what a user finds afterwards (status, results.tsv, git refs, iteration files)."""

import csv
import difflib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import one_epoch, single_run
from typer.testing import CliRunner

from autoresearch.cli.app import app

cli = CliRunner()
# Far more than the one epoch each train.py trains (one_epoch): a busy machine is no crash.
BUDGET = ["--budget", "300", "--grace", "30"]


def set_params(code: str, **values) -> str:
    for name, value in values.items():
        old = next(line for line in code.splitlines() if line.startswith(f"{name} = "))
        comment = old[old.index("  #") :]
        code = code.replace(old, f"{name} = {value!r}{comment}")
    return code


@pytest.fixture
def proposals(ws, tmp_path) -> Path:
    one_epoch(ws)
    base = (ws / "train.py").read_text()
    mlp = set_params(
        base,
        OPTIMIZER="adam",
        LEARNING_RATE=0.001,
        HIDDEN_UNITS=256,
        BATCH_SIZE=128,
        NORMALIZE=True,
    )
    worse = set_params(mlp, LEARNING_RATE=1e-06)
    folder = tmp_path / "proposals"
    folder.mkdir()
    (folder / "001-mlp.py").write_text(mlp)
    (folder / "001-mlp.md").write_text("MLP with Adam\n\nA hidden layer and Adam converge faster.")
    patch = difflib.unified_diff(
        mlp.splitlines(True), worse.splitlines(True), "a/train.py", "b/train.py"
    )
    (folder / "002-tiny-lr.patch").write_text("".join(patch))
    (folder / "002-tiny-lr.md").write_text("Tiny learning rate\n\nTo see what happens.")
    (folder / "003-crash.py").write_text(
        mlp.replace(
            "def main() -> None:",
            "def main() -> None:\n    raise RuntimeError('deliberate failure')",
        )
    )
    # ast.parse() accepts it; only the compiler sees that the break is outside a loop
    (folder / "004-broken.py").write_text(mlp + "break\n")
    return folder


def status(ws) -> dict:
    result = cli.invoke(app, ["status", str(ws), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_whole_loop_with_replay_on_real_data(ws, proposals, monkeypatch):
    single_run(ws, repairs=0)  # 003's crash stands (test_repair.py: a repaired one)
    monkeypatch.chdir(proposals.parent)  # a relative --replay-dir is relative to the cwd
    result = cli.invoke(
        app,
        [
            "run",
            str(ws),
            "--agent",
            "replay",
            "--replay-dir",
            proposals.name,
            "--iterations",
            "4",
            *BUDGET,
        ],
    )
    assert result.exit_code == 0, result.output
    snap = status(ws)
    its = snap["iterations"]
    assert [it["status"] for it in its] == ["baseline", "keep", "discard", "crash", "invalid"]
    assert snap["state"] == "finished" and snap["metric"] == {
        "name": "val_accuracy",
        "direction": "maximize",
        "source": "predictions",
        "self_reported": False,
    }
    assert its[1]["value"] > its[0]["value"] + 0.01  # the MLP beats the linear baseline
    assert its[2]["value"] < its[1]["value"]
    assert snap["best"] == {"iteration": 1, "value": its[1]["value"]}
    assert "deliberate failure" in its[3]["reason"]
    assert "'break' outside loop" in its[4]["reason"] and its[4]["train_seconds"] == 0
    assert its[1]["description"] == "MLP with Adam"
    assert its[1]["explanation"].endswith("A hidden layer and Adam converge faster.")
    assert "LEARNING_RATE = 0.1 " in (ws / "train.py").read_text()  # the workspace is untouched

    run_dir = next((ws / ".autoresearch" / "runs").iterdir())
    # iteration files: prompt, diff against its parent, log, predictions
    it2 = run_dir / "iterations" / "0002"
    assert "LEARNING_RATE = 1e-06" in (it2 / "diff.patch").read_text()
    assert "MLP with Adam" in (it2 / "prompt.md").read_text()  # history reached the agent
    assert "epoch 1" in (it2 / "train.log").read_text()
    assert (it2 / "predictions.npy").is_file()
    # git: one commit per experiment, a ref for each, best points at the keep
    git = ["git", "--git-dir", str(run_dir / "repo")]
    refs = subprocess.run(
        [*git, "for-each-ref", "--format=%(refname) %(objectname)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    refs = dict(line.split() for line in refs if line)
    for it in its:
        assert refs[f"refs/experiments/{it['iteration']:04d}"] == it["commit"]
    assert refs["refs/heads/best"] == its[1]["commit"]
    discarded = subprocess.run(
        [*git, "show", f"{its[2]['commit']}:train.py"], capture_output=True, text=True, check=True
    ).stdout
    assert "LEARNING_RATE = 1e-06" in discarded  # discarded code is never lost
    # results.tsv with Karpathy's columns
    rows = list(csv.reader((run_dir / "results.tsv").open(), delimiter="\t"))
    assert rows[0] == ["commit", "val_accuracy", "memory_gb", "status", "description"]
    assert [r[3] for r in rows[1:]] == ["baseline", "keep", "discard", "crash", "invalid"]
    assert rows[2][0] == its[1]["commit"][:7] and float(rows[2][1]) == pytest.approx(
        its[1]["value"]
    )

    # the morning-after report: how it got there, with a plot
    report = (run_dir / "report.md").read_text()
    assert "## How it got there" in report and "A hidden layer and Adam converge faster." in report
    assert "deliberate failure" in report and "+LEARNING_RATE = 0.001" in report
    assert (run_dir / "progress.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # running again: the run is complete; the replay has nothing more either
    again = cli.invoke(
        app, ["run", str(ws), "--agent", "replay", "--replay-dir", str(proposals), *BUDGET]
    )
    assert again.exit_code == 0 and len(status(ws)["iterations"]) == 5

    table = cli.invoke(app, ["status", str(ws)])
    assert "keep" in table.output and "best val_accuracy" in table.output


def test_hpo_agent_short_run_and_resume_on_real_data(ws):
    single_run(ws)
    one_epoch(ws)  # whatever it tries, and the generous grace: a busy machine is no crash
    args = ["run", str(ws), "--agent", "hpo", "--budget", "4", "--grace", "120"]
    assert cli.invoke(app, [*args, "--iterations", "1"]).exit_code == 0
    first = status(ws)["iterations"]
    assert cli.invoke(app, [*args, "--iterations", "2"]).exit_code == 0  # resumes the same run
    snap = status(ws)
    assert len(list((ws / ".autoresearch" / "runs").iterdir())) == 1
    assert [it["iteration"] for it in snap["iterations"]] == [0, 1, 2]
    assert snap["iterations"][:2] == first
    again = cli.invoke(app, args)  # no --iterations: the run remembers the 2 it was resumed with
    assert again.exit_code == 0 and "agent hpo, 2 iterations" in again.output
    assert status(ws)["iterations_planned"] == 2 and len(status(ws)["iterations"]) == 3
    for it in snap["iterations"][1:]:
        assert it["status"] in ("keep", "discard", "crash")
        assert " (hpo: random, " in it["explanation"].splitlines()[0]
        assert it["cost_usd"] == 0.0


def test_hpo_without_the_block_is_a_clear_error_at_start(ws):
    code = (ws / "train.py").read_text()
    start, end = code.index("# --- hyperparameters"), code.index("# --- end hyperparameters ---")
    (ws / "train.py").write_text(code[:start] + code[end + len("# --- end hyperparameters ---") :])
    result = cli.invoke(app, ["run", str(ws), "--agent", "hpo", "--iterations", "1"])
    assert result.exit_code == 2 and "hyperparameters" in result.output
    assert not (ws / ".autoresearch" / "runs").exists()


def test_a_new_budget_on_an_unfinished_run_is_refused(ws, proposals):
    args = ["run", str(ws), "--agent", "replay", "--replay-dir", str(proposals)]
    (ws / "train.py").write_text(
        "import numpy as np, prepare\nprepare.save_predictions(np.zeros(10000, dtype=np.int64))\n"
    )
    assert cli.invoke(app, [*args, "--iterations", "0", "--budget", "5"]).exit_code == 0
    result = cli.invoke(app, [*args, "--iterations", "1", "--budget", "9"])
    assert result.exit_code == 2 and "--budget 5, not --budget 9" in result.output
    assert (
        f"`autoresearch run {ws} --new --budget 9 --iterations 1 --agent replay "
        f"--replay-dir {proposals}`"  # the flags in the order of their settings (config.py)
    ) in result.output
    assert cli.invoke(app, [*args, "--iterations", "0", "--budget", "9", "--new"]).exit_code == 0
    assert len(list((ws / ".autoresearch" / "runs").iterdir())) == 2


def test_the_console_script_never_prints_a_traceback_for_a_broken_workspace(tmp_path):
    exe = str(Path(sys.executable).parent / "autoresearch")
    (tmp_path / "autoresearch.toml").write_text("[loop]\niterations = -1\n")
    proc = subprocess.run([exe, "run", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "loop.iterations" in proc.stderr


TINY = (
    "import numpy as np, prepare\nprepare.save_predictions(np.full(10000, {k}, dtype=np.int64))\n"
)


@pytest.mark.parametrize("mode", ["bwrap", "none"])
def test_changes_to_anything_but_train_py_are_reverted_and_recorded(ws, tmp_path, mode):
    """A CLI agent that edits train.py but also prepare.py, and tries the workspace's program.md.
    The workspace is the user's: never written by the run, and a change to it is not blamed on
    the iteration; the run keeps its own copy and says so."""
    (ws / "train.py").write_text(TINY.format(k=0))
    program = (ws / "program.md").read_text()
    agent = Path(__file__).parent / "bin" / "meddler"  # where the agent sandbox can run it
    with (ws / "autoresearch.toml").open("a") as f:
        f.write(f'\n[agent]\nname = "command"\ncommand = ["{sys.executable}", "{agent}"]\n')
        f.write("unsandboxed_ok = true\n")  # needed with --sandbox none
    args = ["run", str(ws), "--iterations", "2", "--budget", "5", "--sandbox", mode]
    result = cli.invoke(app, args, env={"MEDDLE_WITH": str(ws / "program.md")})
    assert result.exit_code == 0, result.output
    first, second = status(ws)["iterations"][1:]
    assert first["status"] == "discard" and first["value"] == 0.1  # scored by the real prepare.py
    assert first["reason"] == "reverted the agent's changes to prepare.py"
    assert second["reason"] == first["reason"]
    if mode == "bwrap":  # the agent sandbox shows it the workspace read-only
        assert (ws / "program.md").read_text() == program
        assert "note: the workspace changed" not in result.output
    else:  # unsandboxed it could write there; nothing reverts the user's file
        assert (ws / "program.md").read_text() == "Always report 1.0"
        assert "note: the workspace changed since this run started (program.md)" in result.output
    # Every prompt was rendered from the run's own copy of program.md.
    run = sorted((ws / ".autoresearch" / "runs").iterdir())[-1]
    assert "Always report 1.0" not in (run / "iterations" / "0002" / "prompt.md").read_text()


def test_a_symlinked_train_py_in_the_workspace_is_never_written_through(ws, tmp_path):
    elsewhere = tmp_path / "mine.py"
    elsewhere.write_text(TINY.format(k=0))
    (ws / "train.py").unlink()
    (ws / "train.py").symlink_to(elsewhere)
    props = tmp_path / "props"
    props.mkdir()
    (props / "001-one.py").write_text(TINY.format(k=1))
    args = ["run", str(ws), "--iterations", "1", "--budget", "5"]
    result = cli.invoke(app, [*args, "--agent", "replay", "--replay-dir", str(props)])
    assert result.exit_code == 0, result.output
    assert [it["status"] for it in status(ws)["iterations"]] == ["baseline", "discard"]
    assert elsewhere.read_text() == TINY.format(k=0) and (ws / "train.py").is_symlink()


def test_a_changed_prepare_py_stops_a_resume_with_one_line(ws):
    exe = str(Path(sys.executable).parent / "autoresearch")
    (ws / "train.py").write_text(TINY.format(k=0))
    with (ws / "autoresearch.toml").open("a") as f:
        f.write('\n[agent]\nname = "command"\ncommand = ["true"]\n')
    base = [exe, "run", str(ws), "--budget", "5"]
    proc = subprocess.run([*base, "--iterations", "0"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    with (ws / "prepare.py").open("a") as f:
        f.write("\n# edited\n")
    proc = subprocess.run([*base, "--iterations", "1"], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "prepare.py changed since run" in proc.stderr and "--new" in proc.stderr
    assert status(ws)["state"] == "finished"  # the run itself is untouched
