"""Resume after the orchestrator is SIGKILLed at several points, after Ctrl-C, and two at once.

Every test drives the real CLI as a subprocess. Training is a tiny numpy script, no torch: it
predicts the true label of the first `correct` validation images (read from prepare's own cache)
and one class for the rest, so each iteration's score is known without training anything.
"""

from __future__ import annotations

import signal
import subprocess
import sys
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

from autoresearch.training.experiment import experiments_root

N = 3
FLAGS = ["--iterations", str(N), "--budget", "3", "--grace", "1"]
# (correct, class) for the baseline and iterations 1..N: keep, discard, keep.
PLAN = [(0, 0), (2000, 0), (0, 1), (4000, 0)]
STATUSES = ["baseline", "keep", "discard", "keep"]

pytestmark = pytest.mark.usefixtures("known_labels", "reaper")


def replay_workspace(ws: Path, tmp_path: Path, hang: int | None = None) -> list[str]:
    """train.py is the baseline of PLAN, proposals 1..N the rest; iteration `hang` hangs once.
    Returns the agent flags."""
    (ws / "train.py").write_text(train_script(*PLAN[0]))
    props = tmp_path / "proposals"
    props.mkdir()
    for k in range(1, N + 1):
        wait = tmp_path / "release" if k == hang else None
        (props / f"{k:03d}-p.py").write_text(train_script(*PLAN[k], wait_for=wait))
    return ["--agent", "replay", "--replay-dir", str(props)]


def check_complete(ws: Path, before: dict) -> None:
    """Iterations 0..N each once, the ones recorded before the kill unchanged, refs and
    results.tsv in step, nothing left running."""
    after = status(ws)
    assert after["state"] == "finished" and after["stop_reason"] == f"{N} iterations done"
    its = after["iterations"]
    assert [it["iteration"] for it in its] == list(range(N + 1))
    assert [it["status"] for it in its] == STATUSES
    assert its[0]["value"] == 0.1 and its[1]["value"] > 0.1 and its[2]["value"] == 0.1
    assert its[3]["value"] > its[1]["value"]
    assert before["iterations"] and before["iterations"] == its[: len(before["iterations"])]

    repo = run_dir(ws) / "repo"
    listing = subprocess.run(
        ["git", "--git-dir", str(repo), "for-each-ref", "--format=%(refname) %(objectname)"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    refs = dict(line.split() for line in listing.splitlines())
    assert refs == {
        **{f"refs/experiments/{it['iteration']:04d}": it["commit"] for it in its},
        "refs/heads/best": its[3]["commit"],
    }

    rows = (run_dir(ws) / "results.tsv").read_text().splitlines()
    assert len(rows) == 1 + N + 1
    assert [row.split("\t")[0] for row in rows[1:]] == [it["commit"][:7] for it in its]
    assert [row.split("\t")[3] for row in rows[1:]] == STATUSES
    folders = sorted(p.name for p in (run_dir(ws) / "iterations").iterdir())
    assert folders == [f"{n:04d}" for n in range(N + 1)]
    assert processes_in(ws) == []
    experiments = experiments_root(run_dir(ws))  # no experiment directory is left behind
    assert not experiments.exists() or [p.name for p in experiments.iterdir()] == ["data"]


def resume(ws: Path, flags: list[str], done: int) -> Cli:
    cli = Cli(ws, *flags, *FLAGS)
    assert cli.finish() == 0, cli.seen
    assert any(line.endswith(f"resuming after iteration {done}") for line in cli.seen[:3])
    return cli


def test_sigkill_during_training_kills_the_leftover_and_reruns_the_iteration(ws, tmp_path):
    # Unsandboxed: the hanging train.py waits on a file in the host's /tmp, and under bubblewrap
    # the training dies with its orchestrator (--die-with-parent) and leaves nothing to find.
    flags = [*replay_workspace(ws, tmp_path, hang=2), "--sandbox", "none"]
    cli = Cli(ws, *flags, *FLAGS)
    cli.wait_for(r"^iteration 2: training")
    wait_until(lambda: (tmp_path / "release.started").exists())
    wait_until(lambda: (inflight(ws) or {}).get("iteration") == 2)
    cli.kill()
    assert cli.finish() == -signal.SIGKILL
    leftover = inflight(ws)["pid"]
    assert alive(leftover)  # the training process group outlives its orchestrator
    before = status(ws)
    assert before["state"] == "interrupted"
    assert [it["iteration"] for it in before["iterations"]] == [0, 1]

    cli = resume(ws, flags, done=1)
    assert not alive(leftover)
    assert not any("iteration 1:" in line for line in cli.seen)  # not run again
    assert "iteration 2: discard val_accuracy 0.1000" in cli.seen
    check_complete(ws, before)


def test_sigkill_while_the_agent_thinks(ws, tmp_path):
    (ws / "train.py").write_text(train_script(*PLAN[0]))
    scripts = {k: train_script(*PLAN[k]) for k in range(1, N + 1)}
    agent = tmp_path / "agent.py"
    agent.write_text(
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "sys.stdin.read()\n"
        "n = int(Path.cwd().name)  # the experiment folder is named after the iteration\n"
        f"flag = {str(tmp_path / 'thinking')!r}\n"
        "if n == 2 and not os.path.exists(flag):\n"
        "    open(flag, 'w').close()\n"
        "    time.sleep(60)  # thinks for long, the first time\n"
        "time.sleep(0.2)\n"
        f"Path('train.py').write_text({scripts!r}[n])\n"
        "print(f'Proposal {n}: predict more labels.')\n"
    )
    with open(ws / "autoresearch.toml", "a") as f:
        f.write(f'\n[agent]\nname = "command"\ncommand = [{sys.executable!r}, {str(agent)!r}]\n')
        f.write("unsandboxed_ok = true\n")  # with --sandbox none
    # Unsandboxed: under bubblewrap the agent would die with the orchestrator (--die-with-parent),
    # and this test is about finding one that did not.
    cli = Cli(ws, *FLAGS, "--sandbox", "none")
    cli.wait_for(r"^iteration 2: asking command")
    wait_until(lambda: (tmp_path / "thinking").exists())
    cli.kill()
    assert cli.finish() == -signal.SIGKILL
    assert len(processes_in(ws)) == 1  # the agent, still thinking
    before = status(ws)
    assert [it["iteration"] for it in before["iterations"]] == [0, 1]

    cli = resume(ws, ["--sandbox", "none"], done=1)
    assert "iteration 2: discard val_accuracy 0.1000" in cli.seen
    check_complete(ws, before)
    assert status(ws)["iterations"][2]["description"] == "Proposal 2: predict more labels."


@pytest.mark.parametrize("k", [1, N])
def test_sigkill_right_after_an_iteration_is_recorded(ws, tmp_path, k):
    flags = replay_workspace(ws, tmp_path)
    cli = Cli(ws, *flags, *FLAGS)
    cli.wait_for(rf"^iteration {k}: {STATUSES[k]} ")
    cli.kill()
    code = cli.finish()
    before = status(ws)
    if k < N:
        assert code == -signal.SIGKILL and before["state"] == "interrupted"
    else:  # after the last iteration the run may have ended before the kill landed
        assert before["state"] in ("interrupted", "finished")
    assert [it["iteration"] for it in before["iterations"]][: k + 1] == list(range(k + 1))

    resume(ws, flags, done=len(before["iterations"]) - 1)
    check_complete(ws, before)


def test_resume_repairs_results_and_best_after_a_kill_between_row_and_files(ws, tmp_path):
    """A kill after the row of the last keep is committed but before results.tsv and the best
    ref are written leaves them one iteration behind; the resume brings them in step."""
    flags = replay_workspace(ws, tmp_path)
    assert Cli(ws, *flags, *FLAGS).finish() == 0
    before = status(ws)
    results = run_dir(ws) / "results.tsv"
    results.write_text("".join(results.read_text().splitlines(keepends=True)[:-1]))
    repo = ["git", "--git-dir", str(run_dir(ws) / "repo")]
    best_before = before["iterations"][1]["commit"]
    subprocess.run([*repo, "update-ref", "refs/heads/best", best_before], check=True)

    resume(ws, flags, done=N)
    check_complete(ws, before)


def test_ctrl_c_interrupts_and_leaves_nothing_running(ws, tmp_path):
    # Unsandboxed: the hanging train.py waits on a file in the host's /tmp, and under bubblewrap
    # the training dies with its orchestrator (--die-with-parent) and leaves nothing to find.
    flags = [*replay_workspace(ws, tmp_path, hang=2), "--sandbox", "none"]
    cli = Cli(ws, *flags, *FLAGS)
    cli.wait_for(r"^iteration 2: training")
    wait_until(lambda: (tmp_path / "release.started").exists())
    cli.kill(signal.SIGINT)
    assert cli.finish() == 130
    assert any(line.endswith("interrupted: interrupted by Ctrl-C") for line in cli.seen)
    assert processes_in(ws) == []
    before = status(ws)
    assert before["state"] == "interrupted"
    assert before["stop_reason"] == "interrupted by Ctrl-C"
    assert [it["iteration"] for it in before["iterations"]] == [0, 1]

    resume(ws, flags, done=1)
    check_complete(ws, before)


def test_a_second_orchestrator_on_a_running_run_is_refused(ws, tmp_path):
    # A long budget: iteration 1 trains until the second orchestrator has been refused.
    # Unsandboxed: the hanging train.py waits on a file in the host's /tmp.
    flags = [*replay_workspace(ws, tmp_path, hang=1), "--sandbox", "none"]
    flags += ["--iterations", str(N), "--budget", "60"]
    first = Cli(ws, *flags)
    first.wait_for(r"^iteration 1: training")
    wait_until(lambda: (tmp_path / "release.started").exists())
    before = status(ws)
    assert before["state"] == "running"

    second = subprocess.run([AUTORESEARCH, "run", str(ws), *flags], capture_output=True, text=True)
    assert second.returncode == 2  # a refused start
    errors = [line for line in second.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "already running" in errors[0]
    assert f"pid {first.proc.pid}" in errors[0]
    assert "Traceback" not in second.stderr

    (tmp_path / "release").touch()
    assert first.finish() == 0, first.seen
    assert "iteration 1: keep" in " ".join(first.seen)
    check_complete(ws, before)


def test_sigkill_during_confirmation_repeats_no_run_and_no_decision(ws, tmp_path):
    """A candidate is killed in its second (confirmation) run: the resume trains neither the
    baseline's noise runs nor the candidate's first run again, nor asks the agent again."""
    trainings, release = tmp_path / "trainings.txt", tmp_path / "release"

    def script(correct: int) -> str:  # logs its seed; the seed 1001 run hangs, the first time
        flag = str(release) + ".started"
        return (
            "import os, time\nimport numpy as np\nimport prepare\n"
            f"open({str(trainings)!r}, 'a').write(f'{{prepare.seed()}}\\n')\n"
            f"if prepare.seed() == 1001 and not os.path.exists({flag!r}):\n"
            f"    open({flag!r}, 'w').close()\n"
            "    end = time.time() + 60\n"
            f"    while not os.path.exists({str(release)!r}) and time.time() < end:\n"
            "        time.sleep(0.05)\n" + train_script(correct, 0)
        )

    (ws / "train.py").write_text(script(0))
    props = tmp_path / "proposals"
    props.mkdir()
    (props / "001-better.py").write_text(script(3000))
    # Unsandboxed: the hanging train.py waits on a file in the host's /tmp.
    flags = ["--agent", "replay", "--replay-dir", str(props), "--sandbox", "none"]
    flags += ["--iterations", "1", "--budget", "3", "--grace", "1"]
    cli = Cli(ws, *flags)
    cli.wait_for(r"^iteration 1: confirmation run 2 of 3")
    wait_until(lambda: Path(str(release) + ".started").exists())
    wait_until(lambda: (inflight(ws) or {}).get("iteration") == 1)
    cli.kill()
    assert cli.finish() == -signal.SIGKILL
    before = status(ws)
    assert [it["iteration"] for it in before["iterations"]] == [0]

    cli = Cli(ws, *flags)
    assert cli.finish() == 0, cli.seen
    assert "iteration 1: resuming the proposal recorded before the stop" in cli.seen
    assert "iteration 1: 1 of its runs recorded before a stop" in cli.seen
    assert not any(line.startswith("iteration 1: asking") for line in cli.seen)
    assert not any(line.startswith("iteration 0:") for line in cli.seen)
    # every seed trained once, but the one that was killed, which trained again
    assert trainings.read_text().split() == ["0", "1", "2", "1000", "1001", "1001", "1002"]
    after = status(ws)["iterations"]
    assert after[0] == before["iterations"][0]
    assert [it["status"] for it in after] == ["baseline", "keep"]
    assert after[1]["seeds"] == [1000, 1001, 1002] and len(set(after[1]["values"])) == 1
    assert after[1]["reason"] is None
    assert processes_in(ws) == []
