"""The template keeps to its budget: the clock read every batch, the time to predict set aside,
and one line in its log when the first epoch alone does not fit."""

from __future__ import annotations

import sys

from conftest import CLASS_0, single_run

from autoresearch.agents.hpo_block import parse_block, rewrite_block
from autoresearch.core import config
from autoresearch.core.records import OK
from autoresearch.store import workspace
from autoresearch.training.experiment import run_experiment

BUDGET = 15.0  # room for starting torch on a busy machine; far less than the epoch below
FIRST_EPOCH_TOO_LONG = "budget: 15 s is less than one epoch (training began at "


def test_the_costliest_point_of_the_templates_space_stops_inside_the_budget(tmp_path):
    """hpo's costliest choices in the template's own block (the smallest batches, the widest
    layer, AdamW), whose first epoch took 30-40 s on a busy CPU and timed out: it stops on the
    clock, part way through an epoch, and still saves predictions inside the budget."""
    ws = tmp_path / "ws"
    workspace.init(ws, "fashion-mnist", sys.executable)
    code = (ws / "train.py").read_text()
    params = {p.name: p for p in parse_block(code).params}
    costliest = {
        "BATCH_SIZE": int(params["BATCH_SIZE"].low),
        "HIDDEN_UNITS": max(params["HIDDEN_UNITS"].choices),
        "OPTIMIZER": "adamw",
        "LEARNING_RATE": 0.001,  # AdamW's usual rate: the few batches there is time for learn
    }
    (ws / "train.py").write_text(rewrite_block(code, costliest))
    cfg = config.with_flags(config.load(ws), {"budget_secs": BUDGET, "grace_secs": 60.0})
    workdir = workspace.snapshot(ws, tmp_path / "work")
    result = run_experiment(ws, cfg, workdir, tmp_path / "out", seed=1)

    assert result.status == OK, result.reason  # not a timeout after the grace
    assert result.value > 0.1  # predictions of a model that trained, saved and scored
    assert (
        result.train_seconds <= BUDGET + 10
    )  # ended near the budget (an epoch here: 43 s), not at its end
    log = result.log_path.read_text()
    first = next(line for line in log.splitlines() if line.startswith("epoch 1 "))
    cut = "of it: out of time)" in first  # epoch 1's line
    assert log.count("budget: ") == (1 if cut else 0), log
    assert (FIRST_EPOCH_TOO_LONG in log) == cut
    assert log.rstrip().endswith("whole epochs trained: 0; predictions saved") == cut


def test_run_repeats_the_baselines_budget_line(ws):
    """The template's `budget:` line, printed once in the baseline's log, is shown by `run` too:
    a user who never opens the log still learns that the budget is short of an epoch."""
    from typer.testing import CliRunner

    from autoresearch.cli.app import app

    line = "budget: 3 s is less than one epoch (training began at 2.5 s)"
    (ws / "train.py").write_text(CLASS_0.replace("prepare.save", f"print({line!r})\nprepare.save"))
    single_run(ws)
    result = CliRunner().invoke(app, ["run", str(ws), "--agent", "hpo", "--iterations", "0"])
    assert result.exit_code == 0, result.output
    assert result.output.count(f"iteration 0: its log says: {line}") == 1
