"""What counts as failing "the same way" for [loop] max_consecutive_failures; what a baseline
that ran out of time is blamed on."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import single_run

from autoresearch.core.history import History
from autoresearch.core.records import Iteration, TrainingRun
from autoresearch.core.stops import out_of_time
from autoresearch.store.store import list_runs

SAME_WAY = [
    (
        "invalid",
        "openai API: connection failed: [Errno 111] Connection refused (gave up after 5 attempt(s))",
        "openai API: connection failed: [Errno 113] Connection refused (gave up after 5 attempt(s))",
    ),
    (
        "invalid",
        "anthropic API: HTTP 529: Overloaded (gave up after 5 attempt(s))",
        "anthropic API: HTTP 500: Overloaded (gave up after 5 attempt(s))",
    ),
    ("crash", "exit code 1: NameError: name 'lr' is not defined", "exit code 1: NameError: x"),
    ("crash", "timeout: killed at 3s budget + 1s grace", "timeout: killed at 4s budget + 1s grace"),
    (
        "invalid",
        "train.py is unchanged",
        "train.py is unchanged; reverted the agent's changes to a",
    ),
]
OTHER_WAYS = [
    ("crash", "exit code 1: NameError: name 'lr' is not defined", "exit code 1: KeyError: 'lr'"),
    ("invalid", "train.py is unchanged", "train.py does not parse: line 3: invalid syntax"),
]


@pytest.mark.parametrize("status_, first, second", SAME_WAY + OTHER_WAYS)
def test_what_counts_as_failing_the_same_way(status_, first, second):
    history = History(
        [Iteration(0, "baseline", value=0.1)]
        + [Iteration(n, status_, reason=reason) for n, reason in enumerate([first, second], 1)]
    )
    assert history.streak == (2 if (status_, first, second) in SAME_WAY else 1)
    history.append(Iteration(3, "discard", value=0.1))
    assert history.streak == 0


# --- a baseline out of time: the budget, or train.py? -------------------------------------------

AUTORESEARCH = str(Path(sys.executable).parent / "autoresearch")
# The line the template's train.py logs as its first epoch begins (checked below on a real run).
TRAINING = "import time\nprint('training: 60000 images an epoch, batches of 32', flush=True)\n"


def run(ws: Path, *args: str) -> subprocess.CompletedProcess:
    props = ws.parent / "proposals"  # the replay agent is never asked: the baseline stops the run
    props.mkdir(exist_ok=True)
    (props / "001-p.py").write_text("print('never trained')\n")
    flags = ["--agent", "replay", "--replay-dir", str(props), "--iterations", "1", "--grace", "1"]
    return subprocess.run(
        [AUTORESEARCH, "run", str(ws), *flags, *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    ("script", "seen"),
    [
        ("import time\ntime.sleep(600)\n", None),  # nothing shows that it works
        (TRAINING + "time.sleep(600)\n", "its first epoch had not ended after "),
        (
            TRAINING + "print('epoch 1 loss 0.6000 (2.5s)', flush=True)\ntime.sleep(600)\n",
            "an epoch took up to 2.5 s here",
        ),
    ],
)
def test_a_baseline_out_of_time_in_its_epochs_blames_the_budget(ws, script, seen):
    """A baseline killed at the budget while it trained is no reason to "fix train.py"."""
    single_run(ws)
    (ws / "train.py").write_text(script)
    result = run(ws, "--budget", "2")
    assert result.returncode == 3, result.stderr  # an early stop
    failed = "stopped: the baseline failed (timeout: killed at 2s budget + 1s grace"
    line = next(line for line in result.stderr.splitlines() if failed in line)
    if seen is None:
        assert "(SIGKILL to the process group)); fix train.py (`autoresearch baseline`" in line
        return
    assert (
        "(SIGKILL to the process group)); the budget is too short for this machine (or it is "
        f"busy), not train.py at fault ({seen}"
    ) in line
    assert "): give it a longer --budget (`autoresearch baseline` tries it)" in line
    assert "fix train.py" not in result.stderr
    again = run(ws)  # its resume is refused with the same advice
    assert again.returncode == 2
    assert f"give it a longer --budget, then start a new run: autoresearch run {ws} --new" in (
        again.stderr
    )


def test_a_train_py_that_scored_before_and_now_runs_out_of_time(ws):
    single_run(ws)
    (ws / "train.py").write_text(
        "import os, time\nimport numpy as np\nimport prepare\n"
        "if os.path.exists('busy'):  # stands for a machine too busy to finish in time\n"
        "    time.sleep(600)\n"
        "prepare.save_predictions(np.zeros(10000, dtype=np.int64))\n"
    )
    assert run(ws, "--budget", "30", "--iterations", "0").returncode == 0
    scored = list_runs(ws)[0].name
    (ws / "busy").touch()
    result = run(ws, "--new", "--budget", "2")
    assert result.returncode == 3, result.stderr
    assert (
        "not train.py at fault (the same train.py scored 0.1000 in run "
        f"{scored}): give it a longer --budget"
    ) in result.stderr


def test_the_templates_log_shows_its_epochs(short_run):
    """What out_of_time reads is what the template's train.py really logs."""
    (log,) = (list_runs(short_run)[0] / "iterations" / "0000").glob("train.log")
    timed_out = TrainingRun("timeout", None, "killed", 4.0, 4.0, None, log)
    assert re.fullmatch(
        r"an epoch took up to \d+\.\d s here",
        out_of_time(Iteration(0, "crash", runs=[timed_out]), None),
    )
    assert "training: 60000 images an epoch, batches of 32" in log.read_text()
