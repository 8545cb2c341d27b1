"""Verdicts that transfer (issue 28): the best and the baseline promoted to a longer budget, each
kept change ablated from the best, and keeps worth a second look; on the real template with the
replay agent and short budgets."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from conftest import _set, one_epoch, signed_in
from typer.testing import CliRunner

from autoresearch.cli.app import app
from autoresearch.core import config
from autoresearch.core.records import BASELINE, KEEP, OK, Iteration, TrainingRun
from autoresearch.core.suspicion import flags
from autoresearch.loop.ablation import revert
from autoresearch.loop.promotion import choose_type, judge
from autoresearch.store.store import list_runs
from autoresearch.training.ray.cluster import Node, gpu_type_of

cli = CliRunner()
BUDGET = ["--budget", "3", "--grace", "30"]
SAYS_BUDGET = "def main() -> None:\n    print('budget', prepare.budget_seconds(), flush=True)"


def settings(ws: Path, text: str) -> None:
    with open(ws / "autoresearch.toml", "a") as f:
        f.write("\n" + text + "\n")


def replay(ws: Path, tmp_path: Path, proposals: list[tuple[str, str]], *args: str):
    """Run the loop on ws with these (description, train.py) proposals; the CLI's result."""
    folder = tmp_path / "proposals"
    folder.mkdir()
    for n, (text, code) in enumerate(proposals, start=1):
        (folder / f"{n:03d}-change.py").write_text(code)
        (folder / f"{n:03d}-change.md").write_text(text)
    argv = ["run", str(ws), "--agent", "replay", "--replay-dir", str(folder), *BUDGET]
    return cli.invoke(app, [*argv, "--iterations", str(len(proposals)), *args])


def status(ws: Path) -> dict:
    result = cli.invoke(app, ["status", str(ws), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_best_is_promoted_to_a_longer_budget_and_the_gain_holds(ws, tmp_path):
    one_epoch(ws)
    settings(
        ws, "[loop]\nnoise_runs = 2\nconfirm_runs = 0\n[promote]\nbudget_factor = 2\nevery = 1"
    )
    base = (ws / "train.py").read_text()
    mlp = _set(base, OPTIMIZER="adam", LEARNING_RATE=0.001, HIDDEN_UNITS=128)
    mlp = mlp.replace("def main() -> None:", SAYS_BUDGET)
    tiny = _set(mlp, LEARNING_RATE=1e-06)
    result = replay(ws, tmp_path, [("MLP with Adam", mlp), ("Tiny learning rate", tiny)])
    assert result.exit_code == 0, result.output
    assert "promotion: iteration 1 and the baseline at 6s (2x the budget), 2 seeds each" in (
        result.output
    )
    snap = status(ws)
    assert [it["status"] for it in snap["iterations"]] == ["baseline", "keep", "discard"]
    [promotion] = snap["promotions"]  # after the first keep ([promote] every = 1), not again
    assert promotion["after_iteration"] == 1 and promotion["best_iteration"] == 1
    assert promotion["budget_secs"] == 6
    assert len(promotion["best_values"]) == len(promotion["baseline_values"]) == 2
    assert promotion["gain"] > 0.02 and promotion["holds"] is True
    run_dir = list_runs(ws)[-1]
    log = (run_dir / "promotions" / "0001-x2" / "best-0" / "train.log").read_text()
    assert "budget 6.0" in log  # trained at twice the budget
    # the real template uses its seed: nothing to doubt about the baseline's runs
    assert snap["suspicious"] == []
    text = cli.invoke(app, ["status", str(ws)]).output
    assert "promotion at 6s: iteration 1 +0.0" in text and ": holds" in text
    assert "## Do the verdicts transfer?" in (run_dir / "report.md").read_text()
    compared = json.loads(cli.invoke(app, ["compare", str(ws), "--json"]).stdout)
    assert compared["runs"][0]["promotion"]["holds"] is True
    assert "x2 +0.0" in cli.invoke(app, ["compare", str(ws), "--markdown"]).output
    # resuming the finished run promotes nothing twice
    again = cli.invoke(app, ["run", str(ws)])
    assert again.exit_code == 0, again.output
    assert "promotion:" not in again.output and len(status(ws)["promotions"]) == 1


def runs(*values: float) -> list[TrainingRun]:
    return [TrainingRun(OK, v, None, 1.0, 1.0, None, None, seed=k) for k, v in enumerate(values)]


def test_a_promotion_holds_only_when_the_loops_own_test_confirms_it(cfg):
    history = [Iteration(0, BASELINE, 0.80, runs=runs(0.80, 0.81))]
    same = judge(cfg, runs(0.812, 0.808), runs(0.811, 0.809), history)
    assert same.holds is False and "not confirmed" in same.reason
    better = judge(cfg, runs(0.86, 0.862), runs(0.81, 0.812), history)
    assert better.holds is True and round(better.gain, 4) == 0.05
    lower = config.Config.model_validate({"direction": "minimize"})
    assert judge(lower, runs(0.5, 0.52), runs(0.8, 0.81), history).gain > 0  # better is lower


def test_a_mixed_cluster_promotes_on_another_gpu_type(cfg):
    gpu = cfg.resources.model_copy(update={"gpus": 1.0})
    a100 = [Node(f"a{i}", "a", 8, 4, gpu_type="A100") for i in range(2)]
    h100 = [Node("h0", "h", 8, 2, gpu_type="H100")]
    assert choose_type(a100 + h100, gpu) == ("A100", "H100")
    assert choose_type(a100, gpu) == ("A100", "")  # one type: promoted where it ran
    assert choose_type(a100 + h100, cfg.resources) == ("", "")  # no GPUs asked for
    assert gpu_type_of({"CPU": 8.0, "GPU": 1.0, "accelerator_type:H100": 1.0}) == "H100"


def test_each_kept_change_is_ablated_from_the_best(ws, tmp_path):
    one_epoch(ws)
    settings(ws, "[loop]\nnoise_runs = 2\nconfirm_runs = 0")
    base = (ws / "train.py").read_text()
    mlp = _set(base, OPTIMIZER="adam", LEARNING_RATE=0.001, HIDDEN_UNITS=128)
    smaller = _set(mlp, BATCH_SIZE=100)  # five times the steps in the one epoch
    result = replay(ws, tmp_path, [("MLP with Adam", mlp), ("Smaller batches", smaller)])
    assert result.exit_code == 0, result.output
    assert [it["status"] for it in status(ws)["iterations"]] == ["baseline", "keep", "keep"]
    done = cli.invoke(app, ["ablate", str(ws), "--json"])
    assert done.exit_code == 0, done.output
    found = json.loads(done.stdout)
    assert found["best_iteration"] == 2 and len(found["best_values"]) == 2
    first, second = found["changes"]
    # the batch size's line sits between the lines the MLP changed: that revert conflicts
    assert (first["iteration"], first["applies"], first["values"]) == (1, False, [])
    assert "no longer applies" in first["reason"] and first["contribution"] is None
    assert second["iteration"] == 2 and second["applies"] and len(second["values"]) == 2
    assert second["contribution"] > 0 and second["spread"] is not None
    snap = status(ws)
    assert [c["iteration"] for c in snap["ablation"]["changes"]] == [1, 2]
    shown = " ".join(cli.invoke(app, ["status", str(ws)]).output.split())  # wrapped to width
    assert "ablation of iteration 2: contribution of each keep: 1 (does not apply), 2 +0." in shown
    table = cli.invoke(app, ["ablate", str(ws)])  # again: the table, replacing the first
    assert (
        table.exit_code == 0
        and "contribution" in table.output
        and "Smaller batches" in table.output
    )
    assert cli.invoke(app, ["report", str(ws)]).exit_code == 0
    assert "Ablation of iteration 2" in (list_runs(ws)[-1] / "report.md").read_text()
    client = signed_in(ws)
    page = client.get(f"/api/runs/{snap['run']}").json()
    assert page["ablation"]["changes"][1]["description"] == "Smaller batches"
    assert "renderVerdicts" in client.get("/static/verdicts.js").text


def test_a_change_that_later_keeps_overwrote_no_longer_reverts():
    parent = "A = 1\nB = 2\nC = 3\nD = 4\nE = 5\n"
    keep = parent.replace("A = 1", "A = 10")
    later = keep.replace("E = 5", "E = 50")
    assert revert(later, keep, parent) == "A = 1\nB = 2\nC = 3\nD = 4\nE = 50\n"
    overwritten = keep.replace("A = 10", "A = 20")
    assert revert(overwritten, keep, parent) is None


NO_SEED = """\
import numpy as np
import prepare

prepare.save_predictions(np.zeros(10000, dtype=np.int64))
"""


def test_runs_that_ignore_their_seed_are_flagged(ws, tmp_path):
    (ws / "train.py").write_text(NO_SEED)
    settings(ws, "[loop]\nnoise_runs = 2\nconfirm_runs = 0")
    ones = NO_SEED.replace("np.zeros", "np.ones")
    result = replay(ws, tmp_path, [("Class 1 for all", ones)])
    assert result.exit_code == 0, result.output
    [flag] = status(ws)["suspicious"]
    assert flag["iteration"] == 0 and "ignore AUTORESEARCH_SEED" in flag["reasons"][0]
    assert "suspicious: iteration 0: its 2 runs scored exactly 0.1000 under seeds 0, 1" in (
        cli.invoke(app, ["status", str(ws)]).output
    )
    refused = cli.invoke(app, ["ablate", str(ws)])
    assert refused.exit_code == 2 and "has no kept change to ablate" in refused.output


def keep(n: int, value: float, holdout: float, values: list[float]) -> Iteration:
    it = Iteration(n, KEEP, value, runs=runs(*values))
    for run in it.runs:
        run.metrics = {"holdout_val_accuracy": holdout}
    return it


def test_a_gain_far_beyond_the_earlier_ones_or_absent_on_the_holdout_is_flagged(cfg):
    history = [
        keep(0, 0.800, 0.800, [0.799, 0.801]),
        keep(1, 0.803, 0.803, [0.802, 0.804]),  # 2.1 sigma (sigma 0.0014)
        keep(2, 0.806, 0.8065, [0.805, 0.807]),
    ]
    history[0].status = BASELINE
    assert flags(history, cfg) == []
    history.append(keep(3, 0.906, 0.8066, [0.905, 0.907]))  # 70.7 sigma, none of it on holdout
    [flag] = flags(history, cfg)
    assert flag["iteration"] == 3
    far, holdout = flag["reasons"]
    assert "its gain +0.1000 is 70.7 sigma, over 5x the largest earlier keep's (2.1 sigma)" in far
    assert "holdout gain +0.0001 is far below its validation gain +0.1000" in holdout


def test_a_store_from_before_verdicts_shows_none(tmp_path):
    with tarfile.open(Path(__file__).parent / "fixtures" / "run-0.1.0.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    snap = status(tmp_path / "ws")  # read-only: through a migrated copy in memory
    assert (snap["promotions"], snap["ablation"], snap["machine_cost_usd"]) == ([], None, None)
    assert len(snap["iterations"]) == 3
