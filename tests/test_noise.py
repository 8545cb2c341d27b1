"""Verdicts that survive noise: the noise floor, confirmation before a keep, and seeds.

The statistics are checked on many simulated decisions (values drawn from a normal law, fed to
the loop's own decide()); the loop itself on tiny numpy train.py scripts whose score depends on
AUTORESEARCH_SEED (so the noise is real run-to-run noise, and reproducible); and one short real
training shows that the same seed gives the same score.
"""

from __future__ import annotations

import math
import random
import sys

import pytest
from conftest import one_epoch
from noisy import loop_run, noisy_script
from typer.testing import CliRunner

from autoresearch.cli.app import app
from autoresearch.core import config
from autoresearch.core.decide import decide
from autoresearch.core.noise import Noise, estimate, margin, t95
from autoresearch.core.records import BASELINE, DISCARD, KEEP, OK, Iteration, TrainingRun
from autoresearch.store import workspace
from autoresearch.training.experiment import run_experiment

cli = CliRunner()


def run(value: float, seed: int = 0) -> TrainingRun:
    return TrainingRun(OK, value, None, 1.0, 1.0, None, None, seed)


def iteration(n: int, values: list[float], status: str = DISCARD) -> Iteration:
    runs = [run(v, n * 1000 + k) for k, v in enumerate(values)]
    return Iteration(n, status, value=sum(values) / len(values), runs=runs)


def test_the_noise_floor_is_the_pooled_within_iteration_spread():
    history = [iteration(0, [0.80, 0.82, 0.84]), iteration(1, [0.5]), iteration(2, [0.9, 0.94])]
    noise = estimate(history)
    # squares: 0.0008 (iteration 0) + 0.0008 (iteration 2), over (3 - 1) + (2 - 1) = 3 dof
    assert noise.runs == 5 and noise.dof == 3
    assert noise.sigma == pytest.approx(math.sqrt(0.0016 / 3))
    assert estimate([iteration(0, [0.8])]) == Noise(None, 0, 0)
    assert t95(4) == 2.132 and t95(1000) == pytest.approx(1.6464, abs=1e-3)


def decide_once(rng: random.Random, cfg, shift: float, sigma: float = 0.01) -> tuple[str, int]:
    """One decision of the loop on simulated runs: the baseline's noise runs, the candidate's
    first run and, when it would be kept, its confirmation runs. Returns (status, runs)."""
    base = iteration(0, [rng.gauss(0.8, sigma) for _ in range(cfg.loop.noise_runs)], BASELINE)
    values = [rng.gauss(0.8 + shift, sigma)]
    first = iteration(1, values)
    status, _ = decide(cfg, first.runs, base, estimate([base, first]))
    if status == KEEP and cfg.loop.confirm_runs:
        values += [rng.gauss(0.8 + shift, sigma) for _ in range(cfg.loop.confirm_runs)]
        confirmed = iteration(1, values)
        status, _ = decide(cfg, confirmed.runs, base, estimate([base, confirmed]))
    return status, len(values)


def test_a_no_op_change_is_falsely_kept_at_most_5_percent_of_the_time():
    rng = random.Random(7)
    confirm, once = config.Config(), config.parse({"loop": {"confirm_runs": 0}})
    trials = 4000
    false_keeps = sum(decide_once(rng, confirm, 0.0)[0] == KEEP for _ in range(trials))
    assert false_keeps / trials <= 0.05
    # without confirmation one lucky run is enough: about half of the no-op changes are kept
    assert 0.4 < sum(decide_once(rng, once, 0.0)[0] == KEEP for _ in range(trials)) / trials < 0.6


def test_a_real_improvement_is_kept_and_non_candidates_are_not_rerun():
    rng = random.Random(8)
    cfg = config.Config()
    kept = [decide_once(rng, cfg, 0.05) for _ in range(500)]  # five standard deviations better
    assert sum(status == KEEP for status, _ in kept) / 500 > 0.95
    worse = [decide_once(rng, cfg, -0.05) for _ in range(500)]
    assert all(status == DISCARD and runs == 1 for status, runs in worse)


def test_the_margin_shrinks_with_more_runs():
    noise = Noise(0.01, 10, 8)
    assert margin(noise, 3, 3) > margin(noise, 5, 5) > margin(noise, 50, 50)
    assert margin(Noise(None, 0, 0), 3, 3) == 0.0


# --- the loop, on train.py scripts whose score depends on the seed ---
def test_no_op_changes_are_not_kept_and_a_real_improvement_is(ws, known_labels, tmp_path):
    base = noisy_script(3000)
    (ws / "train.py").write_text(base)
    no_ops = {f"{k:03d}-noop.py": noisy_script(3000, tag=f"variant {k}") for k in range(1, 7)}
    snap = loop_run(ws, no_ops | {"007-better.py": noisy_script(4500)}, tmp_path)
    its = snap["iterations"]
    assert its[0]["status"] == "baseline" and len(its[0]["values"]) == 3  # noise_runs = 3
    assert its[0]["seeds"] == [0, 1, 2] and len(set(its[0]["values"])) == 3
    assert its[0]["value"] == pytest.approx(sum(its[0]["values"]) / 3)
    assert snap["noise"]["sigma"] > 0 and snap["noise"]["runs"] >= 3
    statuses = [it["status"] for it in its[1:]]
    assert statuses[:6] == ["discard"] * 6 and statuses[6] == "keep"
    for it in its[1:]:  # only a candidate (its first run beat the best) was trained again
        first_beat = it["values"][0] > its[0]["value"]
        assert len(it["values"]) == (3 if first_beat else 1)
        assert it["seeds"] == [it["iteration"] * 1000 + k for k in range(len(it["values"]))]
    confirmed = [it for it in its[1:7] if len(it["values"]) == 3]
    assert confirmed, "no no-op change looked better on its first run: the test shows nothing"
    assert all(it["reason"].startswith("not confirmed") for it in confirmed)
    assert its[7]["reason"] is None and len(its[7]["values"]) == 3
    assert snap["repeat_seconds"] > 0
    table = cli.invoke(app, ["status", str(ws)]).output
    assert f"noise: sigma {snap['noise']['sigma']:.4f} between seeds" in table
    assert f"of it repeats {snap['repeat_seconds']:.1f} s" in table

    # The same proposals, one run each, as before confirmation: a lucky no-op run is kept.
    once = loop_run(ws, no_ops, tmp_path, "noise_runs = 1", "confirm_runs = 0")
    assert "keep" in [it["status"] for it in once["iterations"]]
    assert all(len(it["values"]) == 1 for it in once["iterations"])
    assert once["noise"] == {"sigma": None, "runs": 0} and once["repeat_seconds"] == 0


def test_the_same_seed_reproduces_a_real_training(tmp_path):
    ws = tmp_path / "ws"
    workspace.init(ws, "fashion-mnist", sys.executable)
    one_epoch(ws)
    cfg = config.with_flags(config.load(ws), {"budget_secs": 30.0, "grace_secs": 30.0})
    values = []
    for k, seed in enumerate([5, 5, 6]):
        workdir = workspace.snapshot(ws, tmp_path / f"work{k}")
        result = run_experiment(ws, cfg, workdir, tmp_path / f"out{k}", seed)
        assert result.status == OK and result.seed == seed, result.reason
        assert "holdout_val_accuracy" in result.metrics
        values.append((result.value, result.metrics["holdout_val_accuracy"]))
    assert values[0] == values[1]
    assert values[2] != values[0]
