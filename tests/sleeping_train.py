"""A train.py without torch for the tests of parallel runs (test_async.py, test_scale_out.py):
it sleeps, then gets the first CORRECT of every 10,000 right. A module of helpers, not of tests,
so that importing it never skips a test module (test_scale_out.py needs Ray; test_async.py
does not)."""

from __future__ import annotations

from pathlib import Path

from conftest import single_run

from autoresearch.training.local import THREAD_ENV

# train.py without torch: sleeps, then gets the first CORRECT of every 10,000 right (known.npy is
# the test labels, which only the test can write into the workspace: the scores are real).
SCRIPT = """\
import os, time
import numpy as np
import prepare

CORRECT = {correct}
SLEEP = {sleep}
print("threads:", {threads}, flush=True)
time.sleep(SLEEP)
preds = np.full(10000, -1, dtype=np.int64)
preds[:CORRECT] = np.load("known.npy")[:CORRECT]
preds[preds < 0] = (np.load("known.npy")[preds < 0] + 1) % 10
prepare.save_predictions(preds)
"""
THREADS = "[os.environ.get(k) for k in " + repr(list(THREAD_ENV)) + "]"


def script(correct: int, sleep: float) -> str:
    return SCRIPT.format(correct=correct, sleep=sleep, threads=THREADS)


def workspace(ws: Path, tmp_path: Path, plan: list[tuple[int, float]], extra: str = "") -> list:
    """The baseline is plan[0]; proposals 1.. the rest (a replay agent). Returns agent flags."""
    toml = ws / "autoresearch.toml"
    toml.write_text("holdout = false\n" + toml.read_text())  # scores on all 10,000 labels
    (ws / "train.py").write_text(script(*plan[0]))
    single_run(ws)
    with open(ws / "autoresearch.toml", "a") as f:
        f.write(extra)
    props = tmp_path / "proposals"
    props.mkdir()
    for k, (correct, sleep) in enumerate(plan[1:], start=1):
        (props / f"{k:03d}-p.py").write_text(script(correct, sleep))
        (props / f"{k:03d}-p.md").write_text(f"{correct} right, {sleep} s\n\nTo see.")
    return ["--agent", "replay", "--replay-dir", str(props), "--iterations", str(len(plan) - 1)]
