"""Stops a night is planned around (issue 28): a target, a time of day, and an estimate of hours
and dollars (the model's prices and the machines' [resources] usd_per_hour) before training."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

from conftest import _set, one_epoch
from typer.testing import CliRunner

from autoresearch.cli.app import app
from autoresearch.core import config
from autoresearch.loop.estimate import estimate_line
from autoresearch.loop.stop_rules import deadline

cli = CliRunner()
MECHANICS = "[loop]\nnoise_runs = 1\nconfirm_runs = 0\n"  # one training per iteration


def start(ws: Path, tmp_path: Path, toml: str, *args: str):
    """Two replay proposals (neither should be asked for); the CLI's result and the status."""
    one_epoch(ws)
    with open(ws / "autoresearch.toml", "a") as f:
        f.write("\n" + toml)
    folder = tmp_path / "proposals"
    folder.mkdir()
    mlp = _set((ws / "train.py").read_text(), OPTIMIZER="adam", LEARNING_RATE=0.001)
    for n in (1, 2):
        (folder / f"00{n}-adam.py").write_text(mlp + f"# {n}\n")
        (folder / f"00{n}-adam.md").write_text("Adam")
    argv = ["run", str(ws), "--agent", "replay", "--replay-dir", str(folder), "--iterations", "2"]
    result = cli.invoke(app, [*argv, "--budget", "3", "--grace", "30", *args])
    snap = json.loads(cli.invoke(app, ["status", str(ws), "--json"]).stdout)
    return result, snap


def test_the_run_stops_once_the_confirmed_best_reaches_the_target(ws, tmp_path):
    result, snap = start(ws, tmp_path, MECHANICS + "target = 0.5\n")
    assert result.exit_code == 0, result.output
    assert "estimate: 2 iterations in" in result.output  # before the baseline trains
    assert result.output.index("estimate:") < result.output.index("training the baseline")
    assert snap["stop_reason"].startswith("target reached: val_accuracy 0.")
    assert "at iteration 0 (target 0.5, [loop] target)" in snap["stop_reason"]
    assert len(snap["iterations"]) == 1  # no proposal was asked for


class Later:
    """The clock the stops read, two days on: any --until time has passed."""

    @staticmethod
    def time() -> float:
        return time.time() + 2 * 86_400


def test_no_proposal_is_asked_for_after_the_until_time(ws, tmp_path, monkeypatch):
    monkeypatch.setattr("autoresearch.loop.stop_rules.time", Later)
    result, snap = start(ws, tmp_path, MECHANICS, "--until", "07:00")
    assert result.exit_code == 0, result.output
    assert snap["stop_reason"] == "time is up: no new proposal after 07:00 (--until)"
    assert len(snap["iterations"]) == 1
    refused = cli.invoke(app, ["run", str(ws), "--new", "--until", "7:61"])
    assert refused.exit_code == 2
    assert "--until 7:61: loop.until: '7:61' is not a time of day HH:MM" in refused.output


def test_until_is_the_next_such_time_of_day():
    night = datetime(2026, 3, 1, 23, 0).timestamp()
    assert deadline("07:00", night) - night == 8 * 3600
    assert deadline("23:30", night) - night == 1800
    assert deadline("23:00", night) - night == 24 * 3600  # now is not after now
    assert deadline(None, night) is None


def test_machine_hours_count_in_the_cost_and_its_limit(ws, tmp_path):
    # $36000 an hour is $10 a second: the baseline's training alone passes the $1 limit
    toml = MECHANICS + "[resources]\nusd_per_hour = 36000\n"
    result, snap = start(ws, tmp_path, toml, "--max-cost", "1")
    assert result.exit_code == 0, result.output
    assert "machines at most $" in result.output and "($36000/h per worker)" in result.output
    assert snap["stop_reason"].startswith("cost limit reached: $")
    assert len(snap["iterations"]) == 1
    assert snap["machine_cost_usd"] >= 1
    assert snap["cost_usd"] == snap["machine_cost_usd"]  # the replay agent costs nothing
    assert "machines: $" in cli.invoke(app, ["status", str(ws)]).output


def test_the_estimate_prices_the_prompt_budget_at_the_models_prices():
    cfg = config.Config.model_validate(
        {
            "budget_secs": 360,
            "grace_secs": 0,
            "agent": {"name": "anthropic", "model": "my-model", "max_tokens": 1000,
                      "prices": {"my-model": {"input": 3.0, "output": 15.0}}},
            "loop": {"iterations": 10, "context_tokens": 10_000, "noise_runs": 1,
                     "confirm_runs": 1},
            "resources": {"usd_per_hour": 2.0},
        }
    )  # fmt: skip
    line = estimate_line(cfg, 0)
    # 11 to 21 trainings of 6 minutes; 10 calls of 10,000 tokens in, 1,000 out
    assert "10 iterations in 1.1-2.1 h of training" in line
    assert "agent at most $0.45 (my-model, 10 calls)" in line
    assert "machines at most $4.20 ($2/h per worker)" in line and "total at most $4.65" in line
    unknown = cfg.model_copy(update={"agent": cfg.agent.model_copy(update={"prices": {}})})
    assert "agent cost unknown (no price for my-model)" in estimate_line(unknown, 0)
