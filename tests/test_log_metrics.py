"""Metrics read from train.py's log: the last match wins, what is not a finite number is no
metric, and a configuration that cannot work is refused before anything runs."""

from __future__ import annotations

import pytest

from autoresearch.core import config
from autoresearch.core.log_metrics import pattern_for, read_metrics, score_from_log

PATTERNS = {name: pattern_for(name) for name in ("val_bpb", "peak_vram_mb", "num_steps")}


def log_cfg(**extra) -> config.Config:
    return config.parse(
        {"metric": "val_bpb", "direction": "minimize", "metric_source": "log",
         "metrics": PATTERNS, **extra}
    )  # fmt: skip


def test_the_last_matching_line_wins_and_each_metric_is_a_float(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(
        "step 1 | val_bpb: 9.9 (not at the start of a line)\n"
        "val_bpb:          1.500000\n"  # an interim evaluation
        "---\n"
        "val_bpb:          0.997900\n"
        "peak_vram_mb:     45060.2\n"
        "num_steps:        953\n"
    )
    found, missing = read_metrics(log, PATTERNS)
    assert found == {"val_bpb": 0.9979, "peak_vram_mb": 45060.2, "num_steps": 953.0}
    assert missing == {}
    assert score_from_log(log, log_cfg()) == (found, None)


def test_no_line_a_word_or_infinity_is_no_metric_with_the_reason(tmp_path):
    log = tmp_path / "train.log"
    log.write_bytes(b"Traceback ...\npeak_vram_mb: 1e999\nnum_steps: e\n\xff\xfe binary junk\n")
    found, missing = read_metrics(log, PATTERNS)
    assert found == {}
    assert "no line of the log matches ^val_bpb:" in missing["val_bpb"]
    assert "inf (not a finite number)" in missing["peak_vram_mb"]
    assert "'e', not a number" in missing["num_steps"]
    scores, reason = score_from_log(log, log_cfg())
    assert scores is None
    assert reason.startswith("no val_bpb in the log: no line of the log matches ^val_bpb:")
    scores, reason = score_from_log(tmp_path / "missing.log", log_cfg())
    assert scores is None and "cannot be read" in reason


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"metric_source": "log"}, "needs a pattern for the metric: [metrics] val_bpb = "),
        ({"metrics": {"val_bpb": "^val_bpb: ("}}, "val_bpb: not a regular expression"),
        ({"metrics": {"val_bpb": "^val_bpb: [0-9.]+"}}, "needs a group around the value"),
        ({"memory_metric": "peak_vram_mb"}, "memory_metric 'peak_vram_mb' is not in [metrics]"),
        ({"command": [" ", "train.py"]}, "command: the program (its first word) is empty"),
    ],
)
def test_a_log_configuration_that_cannot_work_is_refused_in_one_line(settings, message):
    with pytest.raises(config.ConfigError) as refused:
        config.parse({"metric": "val_bpb", **settings})
    assert message in str(refused.value)
    assert "\n" not in str(refused.value) and "Value error" not in str(refused.value)
