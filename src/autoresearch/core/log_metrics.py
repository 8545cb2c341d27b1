"""Metrics read from train.py's log ([metrics] patterns): the last match of each wins.

This is how a workspace that evaluates inside its own process reports its score, as Karpathy's
autoresearch does: its train.py ends with a summary block (`val_bpb:          0.997900`,
`peak_vram_mb:     45060.2`, ... ; see its train.py and the "Output format" of its program.md,
github.com/karpathy/autoresearch), and its program.md reads it with
`grep "^val_bpb:\\|^peak_vram_mb:" run.log`, an empty answer meaning a crash. Such a number is
self-reported: the orchestrator never sees the predictions.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from autoresearch.core.config import Config
from autoresearch.core.records import LOG, SELF_REPORTED


def pattern_for(name: str) -> str:
    """The pattern of a summary line `name: value` (what `init --adopt` writes)."""
    return rf"^{re.escape(name)}:\s*([-+0-9.eE]+)"


# The summary line of the peak GPU memory in MB, as Karpathy's train.py prints it and the
# Fashion-MNIST template does on CUDA: results.tsv's memory_gb when no memory_metric is set.
GPU_MEMORY = "peak_vram_mb"


def read_metrics(
    log_path: Path, patterns: dict[str, str]
) -> tuple[dict[str, float], dict[str, str]]:
    """({name: value} of the metrics found, {name: why not} of the others): the last line that
    matches wins (a log may print a metric as it goes, then the final one)."""
    try:
        text = log_path.read_bytes().decode("utf-8", "replace")
    except OSError as err:
        return {}, dict.fromkeys(patterns, f"the log cannot be read: {err.strerror or err}")
    found: dict[str, float] = {}
    missing: dict[str, str] = {}
    for name, pattern in patterns.items():
        matches = list(re.finditer(pattern, text, re.MULTILINE))
        if not matches:
            missing[name] = f"no line of the log matches {pattern}"
            continue
        raw = matches[-1].group(1)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            missing[name] = f"its last line says {raw!r}, not a number"
            continue
        if math.isfinite(value):
            found[name] = value
        else:
            missing[name] = f"it is {value} (not a finite number)"
    return found, missing


def peak_memory_mb(
    cfg: Config, logged: dict[str, float], log_path: Path, rss_mb: float
) -> float | None:
    """An experiment's memory (results.tsv's memory_gb, in MB): its memory_metric when one is
    configured (of the metrics logged); else the peak GPU memory train.py printed, when it
    printed it (it trained on a GPU); else the peak RSS of its process tree."""
    if cfg.memory_metric:
        return logged.get(cfg.memory_metric)
    found = read_metrics(log_path, {GPU_MEMORY: pattern_for(GPU_MEMORY)})[0]
    return found.get(GPU_MEMORY, rss_mb)


def score_from_log(log_path: Path, cfg: Config) -> tuple[dict[str, float] | None, str | None]:
    """(every metric found, the decision metric among them, None), or (None, why not)."""
    found, missing = read_metrics(log_path, cfg.metrics)
    if cfg.metric in found:
        return found, None
    return None, f"no {cfg.metric} in the log: {missing[cfg.metric]}"


def self_reported(cfg: Config) -> bool:
    return cfg.metric_source == LOG


def source_note(cfg: Config) -> str:
    """One line on where the metric comes from, for status, report.md and doctor."""
    if self_reported(cfg):
        return (
            f"{cfg.metric} is {SELF_REPORTED}: train.py printed it and autoresearch read it from "
            'its log (metric_source = "log"); the evaluation ran inside the experiment\'s process'
        )
    return (
        f"{cfg.metric} is scored by prepare.score() in autoresearch's own process, from the "
        "predictions train.py saved"
    )


def scoring_sentence(cfg: Config) -> str:
    """How an iteration is scored, in the agent's prompt."""
    if self_reported(cfg):
        return (
            f"reads {cfg.metric} from the summary line train.py prints at the end (its fixed "
            "evaluation in prepare.py; a run that prints none is a crash)"
        )
    return "scores its predictions with a trusted evaluator"
