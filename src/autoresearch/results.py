"""results.tsv, with the columns people know from Karpathy's autoresearch, derived from the store."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from autoresearch.config import Config
from autoresearch.log_metrics import self_reported
from autoresearch.records import SELF_REPORTED, Iteration
from autoresearch.safe_text import one_line
from autoresearch.store import write_atomically


def write_results(path: Path, history: list[Iteration], cfg: Config) -> None:
    """Rewrites results.tsv (atomically) from the recorded iterations; one line per iteration,
    the description escaped (no tabs, newlines or control characters), and marked when the
    metric is self-reported (train.py printed it)."""
    mark = f" [{SELF_REPORTED}]" if self_reported(cfg) else ""
    text = io.StringIO()
    out = csv.writer(text, delimiter="\t", lineterminator="\n")
    out.writerow(["commit", one_line(cfg.metric), "memory_gb", "status", "description"])
    for it in history:
        out.writerow([
            (it.commit or "")[:7],
            "" if it.value is None else f"{it.value:.6f}",
            "" if it.peak_memory_mb is None else f"{it.peak_memory_mb / 1024:.2f}",
            it.status,
            one_line(it.description) + (mark if it.value is not None else ""),
        ])  # fmt: skip
    write_atomically(path, text.getvalue().encode())
