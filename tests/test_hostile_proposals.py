"""What an agent returns cannot break the run: a train.py nested too deeply to compile, one in
latin-1, 400 MB of output, a train.py too large for the prompt. Each is an `invalid` iteration
with a one-line reason (or, for the output, a capped record), and the run goes on."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from conftest import CLASS_0, PeakRss
from typer.testing import CliRunner

from autoresearch.cli.app import app

cli = CliRunner()
RUNS = ".autoresearch/runs"
LOOP = "\n[loop]\nnoise_runs = 1\nconfirm_runs = 0\n"

# Proposals nested too deeply for CPython's parser or compiler (the had 300,000 terms;
# these are as deep as fits [loop] max_train_py_kb, 64 KB, which refuses larger ones first).
DEEP = {
    "sum": "y = " + "1+" * 30_000 + "1\n",  # RecursionError
    "unary": "y = " + "- " * 30_000 + "1\n",  # MemoryError (parser stack overflow)
    "lambdas": "y = " + "lambda: " * 8_000 + "1\n",  # MemoryError
}
CLASS_1 = CLASS_0.replace("PREDICTION = 0", "PREDICTION = 1")
# A nearest-centroid classifier in numpy: about 0.68, a keep over CLASS_0's 0.1, in a second.
CENTROIDS = """\
import numpy as np
import prepare

x, y, v = prepare.load_data()
x = x.reshape(len(x), -1).astype(np.float32)
v = v.reshape(len(v), -1).astype(np.float32)
c = np.stack([x[y == k].mean(0) for k in range(10)])
prepare.save_predictions(((v**2).sum(1)[:, None] - 2 * v @ c.T + (c**2).sum(1)).argmin(1))
"""
# The stand-in CLI agent: proposal n is the bytes of PLAYS/n.py, after PLAYS/n.flood MB of
# output when that file exists.
AGENT = """\
import pathlib, sys
sys.stdin.read()
plays = pathlib.Path(sys.argv[1])
done = plays / "done"
n = int(done.read_text()) + 1 if done.exists() else 1
done.write_text(str(n))
flood = plays / f"{n}.flood"
if flood.exists():
    line = b"x" * 65535 + b"\\n"
    for _ in range(int(flood.read_text()) * 16):
        sys.stdout.buffer.write(line)
pathlib.Path("train.py").write_bytes((plays / f"{n}.py").read_bytes())
print(f"proposal {n}")
"""


def status(ws: Path) -> dict:
    result = cli.invoke(app, ["status", str(ws), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def run_dir(ws: Path) -> Path:
    return sorted((ws / RUNS).iterdir())[-1]


def test_proposals_nested_too_deeply_to_compile_are_invalid_and_the_run_goes_on(ws, tmp_path):
    (ws / "train.py").write_text(CLASS_0)
    with (ws / "autoresearch.toml").open("a") as f:
        f.write(LOOP)
    props = tmp_path / "props"
    props.mkdir()
    for number, (name, code) in enumerate(DEEP.items(), start=1):
        (props / f"{number:03d}-{name}.py").write_text(code)
    (props / "004-class-1.py").write_text(CLASS_1)
    args = ["run", str(ws), "--iterations", "4", "--budget", "5", "--sandbox", "none"]
    result = cli.invoke(app, [*args, "--agent", "replay", "--replay-dir", str(props)])
    assert result.exit_code == 0, result.output
    iterations = status(ws)["iterations"]
    assert [it["status"] for it in iterations] == [
        "baseline", "invalid", "invalid", "invalid", "discard",
    ]  # fmt: skip
    reasons = [it["reason"] for it in iterations[1:4]]
    assert reasons == [
        f"the new train.py is not valid Python: nested too deeply for Python to compile ({error})"
        for error in ("RecursionError", "MemoryError", "MemoryError")
    ]


def test_what_a_cli_agent_returns_is_kept_faithfully_capped_or_refused(ws, tmp_path):
    """latin-1 bytes are refused (stored as UTF-8 they would train altered); 400 MB of output
    is capped as it is read; a train.py over max_train_py_kb, or one that kept would leave no
    prompt within context_tokens, is invalid; UTF-8 is trained and exported byte for byte."""
    (ws / "train.py").write_text(CLASS_0)
    plays = tmp_path / "plays"
    plays.mkdir()
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    with (ws / "autoresearch.toml").open("a") as f:
        f.write(f'\n[agent]\nname = "command"\ncommand = ["{sys.executable}", "{agent}", ')
        f.write(f'"{plays}"]\nunsandboxed_ok = true\n{LOOP}')  # with --sandbox none
    latin = "# -*- coding: latin-1 -*-\nNAME = 'été'\nprint(ascii(NAME))\n" + CLASS_1
    (plays / "1.py").write_bytes(latin.encode("latin-1"))
    utf8 = latin.replace("latin-1", "utf-8").encode()
    (plays / "2.py").write_bytes(utf8)
    (plays / "2.flood").write_text("400")
    comments = "".join(f"# {' '.join('0123456789')} {i}\n" for i in range(2000))  # 50 KB
    (plays / "3.py").write_text(CENTROIDS + comments)
    (plays / "4.py").write_text(CENTROIDS + "#" * 500 * 1024 + "\n")
    (plays / "5.py").write_text(CENTROIDS)
    args = ["run", str(ws), "--iterations", "5", "--budget", "10", "--sandbox", "none"]
    with PeakRss() as rss:
        result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    iterations = status(ws)["iterations"]
    assert [it["status"] for it in iterations] == [
        "baseline", "invalid", "discard", "invalid", "invalid", "keep",
    ]  # fmt: skip
    latin_reason, context_reason, size_reason = (iterations[n]["reason"] for n in (1, 3, 4))
    assert latin_reason == (
        "the new train.py is not UTF-8 (byte 0xe9 at offset 34, its coding line says "
        "iso-8859-1); autoresearch keeps train.py as UTF-8: save it as UTF-8 without a coding "
        "line"
    )
    assert context_reason.startswith("the new train.py takes about ")
    assert context_reason.endswith("over [loop] context_tokens = 16000; make it shorter")
    assert size_reason == (
        "the new train.py is 500 KB, over [loop] max_train_py_kb = 64; make it shorter"
    )
    # 400 MB went through the orchestrator without being held; what is recorded is capped.
    assert rss.growth_mb < 300, f"the orchestrator grew by {rss.growth_mb:.0f} MB"
    raw = (run_dir(ws) / "iterations" / "0002" / "agent_output.txt").read_text()
    assert len(raw) < 300_000 and raw.startswith("[... ")
    assert int(raw.split(" bytes before them as it was read ...]")[0].split()[-1]) > 380e6
    assert raw.endswith("proposal 2\n")
    # The UTF-8 proposal trained as written (its log prints what Python read) and exports so.
    log = next((run_dir(ws) / "iterations" / "0002").rglob("train.log")).read_text()
    assert "'\\xe9t\\xe9'" in log
    exported = tmp_path / "exported.py"
    result = cli.invoke(app, ["export", str(ws), "--iteration", "2", "-o", str(exported)])
    assert result.exit_code == 0, result.output
    assert exported.read_bytes() == utf8


def test_a_baseline_over_the_size_limit_or_not_kept_faithfully_is_refused_at_the_start(ws):
    (ws / "train.py").write_text(CLASS_0 + "#" * 100 * 1024 + "\n")
    result = cli.invoke(app, ["run", str(ws), "--budget", "5"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "error: workspace: train.py is 100 KB, over [loop] max_train_py_kb = 64; make it "
        "shorter, or raise the limit in autoresearch.toml"
    )
    assert not (ws / RUNS).exists()  # nothing trained, nothing to resume
    (ws / "train.py").write_bytes(b"# coding: latin-1\nNAME = '\xe9'\n" + CLASS_0.encode())
    result = cli.invoke(app, ["run", str(ws), "--budget", "5"])
    assert result.exit_code == 2
    assert "train.py is not UTF-8 (byte 0xe9 at offset 26" in result.output
