"""What a user watching `autoresearch run` sees: a live panel in a terminal (a real pseudo-
terminal), plain lines through a pipe, the live phase for a reader of the store, and a `status`
table that fits 80 columns."""

import fcntl
import io
import json
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from rich.console import Console

from autoresearch.core.noise import estimate
from autoresearch.core.records import TRAINING, Iteration, TrainingRun
from autoresearch.store.store import Store, list_runs
from autoresearch.views.display import Display, phase_text
from autoresearch.views.snapshot import eta_secs, keep_needs, snapshot
from autoresearch.views.status_table import keep_line, render

AUTORESEARCH = str(Path(sys.executable).parent / "autoresearch")
ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def quiet(**extra) -> dict:
    """The test's environment (its data, one thread) without settings that force colours."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    return {**env, **extra}


def resume(short_run: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    """A copy of the short run, and the command that resumes it for its third iteration."""
    ws = tmp_path / "ws"
    shutil.copytree(short_run, ws, symlinks=True)
    return ws, [AUTORESEARCH, "run", str(ws), "--iterations", "3"]


def in_terminal(argv: list[str], columns: int = 100) -> tuple[int, str]:
    """Runs argv with a pseudo-terminal as its stdin, stdout and stderr; returns what it drew."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen(
        argv, stdin=follower, stdout=follower, stderr=follower, env=quiet(TERM="xterm")
    )
    os.close(follower)
    out = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the other end closed
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(leader)
    return proc.wait(timeout=60), out.decode("utf-8", errors="replace")


def test_a_terminal_gets_a_live_panel(short_run, tmp_path):
    ws, argv = resume(short_run, tmp_path)
    code, drawn = in_terminal(argv)
    assert code == 0, drawn
    assert "\x1b[" in drawn  # drawn in place
    text = ESCAPE.sub("", drawn)
    assert "╭─ run " in text and "iteration 3 of 3" in text
    assert re.search(r"training .*━.* 0:0[0-3] left of 0:03", text)  # the budget's countdown
    assert "Larger batches" in text  # what is being trained
    assert "| larger batches: started" in text  # the end of train.log, while it trains
    assert re.search(r"best val_accuracy 0\.\d{4} \(iteration 1, \+0\.\d{4} over the last", text)
    assert "2 of 3 iterations done · cost $0.00" in text
    assert "▁█" in text  # the trend of the best so far
    # the lines the run prints stay, and the panel is gone at the end
    assert "iteration 3: discard val_accuracy" in text or "iteration 3: keep val_accuracy" in text
    assert text.rstrip().endswith(f"see: autoresearch status {ws}")


def test_a_pipe_gets_plain_lines_and_a_reader_sees_the_phase(short_run, tmp_path):
    ws, argv = resume(short_run, tmp_path)
    proc = subprocess.Popen(
        argv, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=quiet()
    )
    store_dir = list_runs(ws)[0]
    seen, during = [], None
    while proc.poll() is None:  # what status --json and the dashboard read while it runs
        store = Store(store_dir, readonly=True)
        try:
            snap = snapshot(store)
        finally:
            store.close()
        if snap["live"]:
            seen.append(snap["live"])
            if during is None and snap["live"]["phase"] == TRAINING:
                during = snap
        time.sleep(0.2)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert "\x1b" not in err and "╭" not in err and out == ""
    lines = err.splitlines()
    assert "iteration 3: training: Larger batches" in lines
    assert any(line.startswith("progress: best val_accuracy 0.") for line in lines)
    assert lines[lines.index("iteration 3: training: Larger batches") + 1].startswith(
        "iteration 3: "
    )  # one line per event: a log stays readable
    assert "progress: " in (store_dir / "orchestrator.log").read_text()
    training = [live for live in seen if live["phase"] == TRAINING]
    assert training, seen
    assert training[0]["iteration"] == 3 and training[0]["budget_secs"] == 3
    assert training[0]["description"] == "Larger batches"
    table = Console(file=io.StringIO(), width=120)
    render(during, table)  # `status` while it trained
    # a busy machine may see it first in its grace seconds (budget 3 s, grace 30 s)
    left = r"(0:0[0-3] of the budget left|over budget: in grace 0:[0-2]\d of 0:30)"
    assert re.search(rf"now: iteration 3: training, 0:\d\d \({left}\); ETA \d:\d\d",
                     table.file.getvalue()), table.file.getvalue()  # fmt: skip
    store = Store(store_dir, readonly=True)
    assert snapshot(store)["live"] is None  # not running: no phase
    store.close()


def test_plain_lines_say_how_a_long_phase_goes_on(ws, cfg):
    """No silence for the whole budget: a line a minute (here 0.1 s) while a phase lasts."""
    store = Store.create(ws / ".autoresearch" / "runs" / "20260101-000000", cfg.model_dump())
    log = store.iteration_dir(4) / "train.log"
    log.parent.mkdir(parents=True)
    log.write_text("epoch 1 loss 0.5\nepoch 2 loss 0.4\n")
    said = []
    history = [Iteration(0, "baseline", value=0.8, wall_seconds=10.0)]
    with Display(store, cfg, history, said.append, heartbeat=0.1) as display:
        display.phase({"phase": TRAINING, "iteration": 4, "started_at": time.time(),
                       "budget_secs": 300.0})  # fmt: skip
        time.sleep(0.5)
    assert said, "no heartbeat"
    assert re.fullmatch(
        r"iteration 4: training, 0:00 \(\d:\d\d of the budget left\); train.log: epoch 2 loss 0.4",
        said[0],
    )


def boxed(lines: list[str]) -> list[str]:
    """The table's lines (the prose under it is wrapped by a terminal, kept whole in a pipe)."""
    return [line for line in lines if line[:1] in "┏┃┡│└"]


def test_status_fits_80_columns(ws, cfg):
    store = Store.create(ws / ".autoresearch" / "runs" / "20260101-000000", cfg.model_dump())
    long = "hpo: " + ", ".join(f"PARAM_{k} = {k * 0.123:.4f}" for k in range(30))
    for n in range(5):
        store.record(Iteration(n, "baseline" if n == 0 else "discard", value=0.8,
                               explanation=f"{long} (try {n})\n\nmore"))  # fmt: skip
    store.record(Iteration(5, "crash", reason="exit code 1: CUDA out of memory", explanation=long))
    store.set(state="running")
    env = quiet(COLUMNS="80")
    narrow = subprocess.run(
        [AUTORESEARCH, "status", str(ws)], capture_output=True, text=True, env=env, check=True
    ).stdout.splitlines()
    assert max(len(line) for line in narrow) <= 80, "\n".join(narrow)  # the prose under it too
    [crash] = [line for line in narrow if re.match(r"│\s+5 │ crash", line)]
    assert "[exit code 1: CUDA out of memory]" in crash and crash.endswith("… │")
    assert "best val_accuracy: 0.8000 at iteration 0; cost $0.00" in narrow
    # the margin the next keep must beat: min_improvement, no noise measured (one run each)
    assert "a keep needs: val_accuracy over 0.8000 (best +0.0000, the mean of 3 runs)" in narrow
    narrow = narrow[:-1]  # the rows below are the five before the crash
    rows = [line for line in narrow if re.match(r"│\s+\d+ │ (baseline|discard) ", line)]
    assert len(rows) == 5 and all(row.rstrip(" │").endswith("…") for row in rows)  # one line each
    wide = subprocess.run(
        [AUTORESEARCH, "status", str(ws), "--wide"],
        capture_output=True, text=True, env=env, check=True,
    ).stdout  # fmt: skip
    assert max(len(line) for line in boxed(wide.splitlines())) <= 80
    at = next(line.index("description") for line in wide.splitlines() if "description" in line)
    column = " ".join(line[at:].strip(" │") for line in wide.splitlines() if len(line) > at)
    assert f"{long} (try 4)" in column  # every word of it, wrapped
    assert (
        json.loads(
            subprocess.run(
                [AUTORESEARCH, "status", str(ws), "--json"],
                capture_output=True,
                env=env,
                check=True,
            ).stdout
        )["iterations"][4]["description"]
        == f"{long} (try 4)"
    )


def test_the_live_phase_says_over_budget_the_first_score_and_an_eta_with_the_runs_to_go():
    training = {"phase": "training", "iteration": 3, "budget_secs": 10, "grace_secs": 5}
    assert phase_text(training, 4) == "iteration 3: training, 0:04 (0:06 of the budget left)"
    assert phase_text(training, 13) == (
        "iteration 3: training, 0:13 (over budget: in grace 0:03 of 0:05)"
    )
    confirming = {**training, "phase": "confirming", "run": 2, "runs": 3, "first": 0.8123}
    assert phase_text(confirming, 4) == (
        "iteration 3: confirming (run 2 of 3), 0:04 (0:06 of the budget left); first run 0.8123"
    )
    # the baseline's 3 runs and a discard of one run took 30 s a run (the discard 40 s with
    # its agent): the candidate in confirmation has this run's rest and one more to go
    runs = [TrainingRun("ok", 0.8, None, 28.0, 30.0, None, None) for _ in range(3)]
    history = [Iteration(0, "baseline", 0.8, wall_seconds=95.0, runs=runs),
               Iteration(1, "discard", 0.7, wall_seconds=40.0, runs=runs[:1])]  # fmt: skip
    assert eta_secs(history, 2, {**confirming, "elapsed_secs": 5.0}) == 25.0 + 30.0
    assert eta_secs(history, 3, {**confirming, "elapsed_secs": 5.0}) == 25.0 + 30.0 + 40.0
    thinking = {"phase": "proposing", "iteration": 2, "elapsed_secs": 5.0}
    assert eta_secs(history, 3, thinking) == 35.0 + 40.0


def test_the_margin_a_keep_needs_is_the_noise_margin_of_its_runs(cfg):
    values = [0.80, 0.81, 0.82]  # sigma 0.01 on 2 degrees of freedom
    runs = [TrainingRun("ok", v, None, 1.0, 1.0, None, None) for v in values]
    history = [Iteration(0, "baseline", 0.81, runs=runs)]
    needs = keep_needs(cfg, history, 0, estimate(history))
    # Student's t at 95% on 2 degrees of freedom, for a mean of 3 runs against a mean of 3
    assert needs == {"margin": pytest.approx(2.920 * 0.01 * (2 / 3) ** 0.5, abs=1e-6), "runs": 3}
    snap = {"keep_needs": needs, "best": {"value": 0.81},
            "metric": {"name": "val_accuracy", "direction": "maximize"}}  # fmt: skip
    assert keep_line(snap) == (
        "a keep needs: val_accuracy over 0.8338 (best +0.0238, the mean of 3 runs)"
    )
    cfg.loop.confirm_runs = 0  # one run decides: only min_improvement
    assert keep_needs(cfg, history, 0, estimate(history)) == {"margin": 0.0, "runs": 1}
