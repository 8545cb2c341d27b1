"""results.tsv, with the columns people know from Karpathy's autoresearch, derived from the store."""

from __future__ import annotations

import csv
from pathlib import Path

from autoresearch.config import Config
from autoresearch.records import Iteration


def write_results(path: Path, history: list[Iteration], cfg: Config) -> None:
    """Rewrites results.tsv (atomically) from the recorded iterations."""
    tmp = path.with_name("results.tsv.tmp")
    with open(tmp, "w", newline="") as f:
        out = csv.writer(f, delimiter="\t", lineterminator="\n")
        out.writerow(["commit", cfg.metric, "memory_gb", "status", "description"])
        for it in history:
            out.writerow([
                (it.commit or "")[:7],
                "" if it.value is None else f"{it.value:.6f}",
                "" if it.peak_memory_mb is None else f"{it.peak_memory_mb / 1024:.2f}",
                it.status,
                it.description.replace("\t", " "),
            ])  # fmt: skip
    tmp.replace(path)
