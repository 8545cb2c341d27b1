"""Property: any text and any bytes an agent or an experiment produces go through record ->
status -> status --json -> report (and git, results.tsv): each succeeds, the store gives the text
back exactly, and what is shown holds no control characters and keeps its structure."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import tempfile
import unicodedata
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from typer.testing import CliRunner

from autoresearch.cli.app import app
from autoresearch.core import config
from autoresearch.core.records import Iteration
from autoresearch.store.gitrepo import ExperimentRepo
from autoresearch.store.layout import runs_dir
from autoresearch.store.results import write_results
from autoresearch.store.store import Store

NASTY = [
    "\x1b[2J\x1b]0;title\x07",
    "```",
    "~~~",
    "|",
    "\n# heading\n",
    "<!--",
    "\x00",
    "\r",
    "\u202e",
    "\u2028",
    "\t",
    "\\",
    "*_[",
]
# Arbitrary text, arbitrary bytes (decoded the way Python keeps undecodable bytes), and pieces
# known to break terminals and markdown, mixed.
pieces = st.one_of(
    st.text(max_size=40),
    st.binary(max_size=40).map(lambda b: b.decode("utf-8", "surrogateescape")),
    st.sampled_from(NASTY),
)
texts = st.lists(pieces, max_size=6).map("".join)


def control_free(text: str, allowed: str = "\n") -> bool:
    return not any(
        ch not in allowed and unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") for ch in text
    )


@settings(
    max_examples=25,
    deadline=None,
    database=None,  # nothing written into the repository
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure prints its example as is
    suppress_health_check=[HealthCheck.too_slow],
)
@given(explanation=texts, reason=texts, output=texts)
def test_any_text_round_trips_and_is_shown_safely(explanation, reason, output):
    root = Path(tempfile.mkdtemp())
    try:
        check(root / "ws", explanation, reason, output)
    finally:
        shutil.rmtree(root)


def check(ws: Path, explanation: str, reason: str, output: str) -> None:
    ws.mkdir()
    cfg = config.Config()
    store = Store.create(runs_dir(ws) / "run", cfg.model_dump())
    repo = ExperimentRepo(store.dir / "repo")
    history = [
        Iteration(0, "baseline", 0.5, explanation=explanation, train_py="a = 1\n"),
        Iteration(1, "crash", None, reason, explanation, "a = 2\n", 0, raw_output=output),
    ]
    parent = None
    for it in history:
        it.commit = parent = repo.commit({"train.py": it.train_py}, it.explanation, parent)
        store.record(it)
    store.set(state="finished", stop_reason=reason)
    write_results(store.dir / "results.tsv", history, cfg)
    store.close()

    cli = CliRunner()
    table = cli.invoke(app, ["status", str(ws)])
    assert table.exit_code == 0, table.output
    assert control_free(table.stdout)

    as_json = cli.invoke(app, ["status", str(ws), "--json"])
    assert as_json.exit_code == 0, as_json.output
    snap = json.loads(as_json.stdout)
    assert [it["explanation"] for it in snap["iterations"]] == [explanation, explanation]
    assert snap["iterations"][1]["reason"] == reason and snap["stop_reason"] == reason
    stored = Store(store.dir, readonly=True)
    assert stored.iterations(full=True)[1].raw_output == output
    stored.close()

    report = cli.invoke(app, ["report", str(ws)])
    assert report.exit_code == 0, report.output
    text = (store.dir / "report.md").read_text()
    assert control_free(text, allowed="\n\t")  # tabs only inside the fenced text
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings[-2:] == ["Iteration 0: 0.5000", "All experiments"]
    assert sum(t.type == "tr_open" for t in tokens) == 3  # the header and two iterations

    rows = (store.dir / "results.tsv").read_text().split("\n")
    assert rows[-1] == ""
    fields = list(csv.reader(rows[:-1], delimiter="\t"))
    assert [len(r) for r in fields] == [5, 5, 5] and control_free("".join(sum(fields, [])))
    log = subprocess.run(
        ["git", "--git-dir", str(store.dir / "repo"), "log", "--format=%H", history[1].commit],
        capture_output=True,
        text=True,
        check=True,
    )
    assert log.stdout.split() == [history[1].commit, history[0].commit]
