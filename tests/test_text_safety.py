"""Any text an agent or an experiment produces is stored as it is and shown escaped.

The end-to-end test drives the real console script with the replay agent and a train.py that
trains nothing (it predicts one class), so the run takes seconds.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from markdown_it import MarkdownIt

from autoresearch.agents.factory import build
from autoresearch.core import config
from autoresearch.core.safe_text import fenced, markdown_inline, one_line, printable, shorten
from autoresearch.loop.loop import Loop
from autoresearch.store.layout import runs_dir
from autoresearch.store.store import Store

AUTORESEARCH = str(Path(sys.executable).parent / "autoresearch")
CONSTANT = "import numpy as np\nimport prepare\nprepare.save_predictions(np.zeros(10000, dtype=np.int64))\n"
# Clear screen, set the window title, ring the bell; a bidi override; a NUL byte.
HOSTILE = "\x1b[2J\x1b]0;pwned\x07\u202eevil\x00"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([AUTORESEARCH, *args], capture_output=True, timeout=300)


def test_escapes_are_visible_and_leave_ordinary_text_alone():
    assert one_line("lr 3e-4, Adam ✓") == "lr 3e-4, Adam ✓"
    assert one_line(HOSTILE) == "\\x1b[2J\\x1b]0;pwned\\x07\\u202eevil\\x00"
    assert one_line("a\nb\tc\r\u2028") == "a\\nb\\tc\\r\\u2028"
    assert one_line("bytes \udcff") == "bytes \\udcff"  # an undecodable byte (surrogateescape)
    assert printable("a\n\tb\x1b") == "a\n\tb\\x1b"  # multi-line text keeps its lines
    assert markdown_inline("a | b <script> [x](y) `c`") == (
        "a \\| b \\<script\\> \\[x\\](y) \\`c\\`"
    )


def test_shortened_text_is_cut_between_values_and_marked():
    changes = "LEARNING_RATE 0.1 -> 0.0123, BATCH_SIZE 32 -> 317, MOMENTUM 0.0 -> 0.9"
    assert shorten(changes, 80) == changes  # it fits: as it is
    assert shorten(changes, 50) == "LEARNING_RATE 0.1 -> 0.0123, BATCH_SIZE 32 -> 317…"
    assert shorten(changes, 40) == "LEARNING_RATE 0.1 -> 0.0123…"  # a whole change, not "-> 3"
    assert shorten("Wider hidden layer and a cosine schedule", 30) == "Wider hidden layer and a…"
    assert shorten("x" * 50, 10) == "x" * 9 + "…"  # one long word: cut, and marked
    assert shorten(f"a {HOSTILE} b", 80) == one_line(f"a {HOSTILE} b")  # escaped as well
    assert all(len(shorten(changes, width)) <= width for width in range(1, 90))


def test_progress_and_orchestrator_log_never_cut_a_value(ws, tmp_path):
    """The description of hpo's changes as the terminal and orchestrator.log show it while it
    trains: once `BATCH_SIZE 32 -> 31` for a change to 317."""
    (ws / "train.py").write_text(CONSTANT)
    lr = f"LEARNING_RATE 0.1 -> 0.{'1' * 15}"
    description = f"{lr}, MOMENTUM 0.0 -> 0.9, BATCH_SIZE 32 -> 317 (hpo: random, 1 trial)"
    assert description[:80].endswith("BATCH_SIZE 32 -> 31")  # where the cut used to fall
    props = tmp_path / "proposals"
    props.mkdir()
    (props / "001-changes.py").write_text(CONSTANT + "CHANGED = 1\n")  # not a repeat
    (props / "001-changes.md").write_text(description + "\n\nWhy.")
    flags = ["--agent", "replay", "--replay-dir", str(props), "--budget", "3", "--grace", "1"]
    run = cli("run", str(ws), "--iterations", "1", *flags)
    assert run.returncode == 0, run.stderr.decode()
    shown = f"iteration 1: training: {lr}, MOMENTUM 0.0 -> 0.9…"
    assert shown in run.stderr.decode()
    (log,) = runs_dir(ws).glob("*/orchestrator.log")
    assert shown in log.read_text() and "-> 31\n" not in log.read_text()


def test_a_fence_in_the_text_cannot_close_the_report_fence():
    text = "```\n# not a heading\n````\n<!-- not a comment"
    doc = fenced(text) + "\n\n## After\n"
    tokens = MarkdownIt("commonmark").parse(doc)
    assert [t.type for t in tokens if t.type in ("fence", "heading_open")] == [
        "fence",
        "heading_open",
    ]
    assert tokens[0].content == text + "\n"


def test_huge_hostile_explanations_and_reasons_are_recorded_and_shown_escaped(ws, tmp_path):
    (ws / "train.py").write_text(CONSTANT)
    props = tmp_path / "proposals"
    props.mkdir()
    explanation = f"Title {HOSTILE}\n\n```\n# not a heading\n" + "x" * 300_000  # > 128 KiB
    (props / "001-big.py").write_text(CONSTANT + "# 1\n")
    (props / "001-big.md").write_text(explanation)
    (props / "002-crash.py").write_text(f"raise SystemExit({HOSTILE.replace(chr(0), '')!r})\n")
    (props / "002-crash.md").write_text(f"crash {HOSTILE}")
    flags = ["--agent", "replay", "--replay-dir", str(props), "--budget", "3", "--grace", "1"]

    run = cli("run", str(ws), "--iterations", "2", *flags)
    assert run.returncode == 0, run.stderr.decode()
    assert b"\x1b" not in run.stderr and b"\x07" not in run.stderr
    assert b"\\x1b[2J" in run.stderr  # the crash reason is shown, escaped

    as_json = cli("status", str(ws), "--json")
    snap = json.loads(as_json.stdout)
    its = snap["iterations"]
    assert [it["status"] for it in its] == ["baseline", "discard", "crash"]
    assert its[1]["explanation"] == explanation.strip()  # verbatim, NUL and escapes included
    assert "\x1b[2J" in its[2]["reason"]
    table = cli("status", str(ws))
    assert table.returncode == 0 and b"\x1b" not in table.stdout and b"\x00" not in table.stdout

    run_dir = runs_dir(ws) / snap["run"]
    assert (run_dir / "iterations" / "0001" / "explanation.md").read_text() == explanation.strip()
    message = subprocess.run(
        ["git", "--git-dir", str(run_dir / "repo"), "log", "-1", "--format=%B", its[1]["commit"]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Title \\x1b[2J" in message and "\\x00" in message and len(message) > 300_000

    rows = (run_dir / "results.tsv").read_text().splitlines()
    assert len(rows) == 4 and "\x1b" not in "".join(rows)
    assert [r[3] for r in csv.reader(rows, delimiter="\t")][1:] == ["baseline", "discard", "crash"]

    report = (run_dir / "report.md").read_text()
    assert "\x1b" not in report and "\x00" not in report
    tokens = MarkdownIt("commonmark").enable("table").parse(report)
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert "All experiments" in headings and "not a heading" not in headings
    table = next(i for i, t in enumerate(tokens) if t.content == "All experiments")
    section = tokens[table:]
    end = next((i for i, t in enumerate(section) if t.type == "heading_open"), len(section))
    assert sum(t.type == "tr_open" for t in section[:end]) == 4  # header + 3 iterations


def test_a_program_md_that_is_not_utf8_stops_doctor_and_run_before_training(ws):
    (ws / "program.md").write_bytes("Maximise accuracy. Caf\xe9\n".encode("latin-1"))
    doctor = cli("doctor", str(ws))
    assert doctor.returncode == 1
    assert b"FAIL workspace: program.md is not UTF-8 text (byte 0xe9" in doctor.stdout
    run = cli("run", str(ws), "--agent", "hpo", "--budget", "3")
    assert run.returncode == 2 and run.stderr.count(b"\n") == 1
    assert b"program.md is not UTF-8" in run.stderr and not runs_dir(ws).exists()


def test_a_program_md_broken_during_a_run_never_crashes_the_recording(ws, tmp_path):
    """Preflight passed, then program.md became non-UTF-8 (edited mid-run): still recorded.
    train.py has a BOM, which Python accepts: the baseline's code is read as Python reads it."""
    (ws / "train.py").write_bytes(b"\xef\xbb\xbf" + CONSTANT.encode())
    (ws / "program.md").write_bytes(b"\xef\xbb\xbfGoal: accuracy. \xff\xfe\n")  # a BOM, bad bytes
    props = tmp_path / "proposals"
    props.mkdir()
    (props / "001-a.py").write_text(CONSTANT + "# changed\n")
    cfg = config.load(
        ws,
        {"budget_secs": 3, "grace_secs": 1, "agent.name": "replay", "agent.replay_dir": str(props)},
    )
    cfg.loop.iterations = 1
    store = Store.create(runs_dir(ws) / "r", cfg.model_dump())
    agent, _ = build(cfg.agent, ws)
    result = Loop(ws, cfg, store, agent, say=lambda _: None).run()
    assert result.state == "finished"
    its = store.iterations(full=True)
    assert [it.status for it in its] == ["baseline", "discard"]
    assert its[0].train_py == CONSTANT
    assert "Goal: accuracy. \ufffd\ufffd" in its[1].prompt
    shown = subprocess.run(
        ["git", "--git-dir", str(store.dir / "repo"), "show", f"{its[1].commit}:program.md"],
        capture_output=True,
        check=True,
    ).stdout
    assert shown == (ws / "program.md").read_bytes()  # the fixed file, byte for byte
