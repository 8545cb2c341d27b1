"""results.tsv, with the columns people know from Karpathy's autoresearch, derived from the store."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from autoresearch.core.config import Config
from autoresearch.core.log_metrics import self_reported
from autoresearch.core.records import SELF_REPORTED, Iteration
from autoresearch.core.safe_text import one_line
from autoresearch.store.store import write_atomically


def write_results(path: Path, history: list[Iteration], cfg: Config) -> None:
    """Rewrites results.tsv (atomically) from the recorded iterations; one line per iteration,
    the description escaped (no tabs, newlines or control characters), and marked when the
    metric is self-reported (train.py printed it)."""
    ResultsFile(path, cfg).write(history)


class ResultsFile:
    """results.tsv: rewritten whole at a (re)start, then a line appended per iteration recorded
    (a line cut short by a kill is made whole by the next start's rewrite)."""

    def __init__(self, path: Path, cfg: Config):
        self.path, self.cfg = path, cfg
        self.mark = f" [{SELF_REPORTED}]" if self_reported(cfg) else ""

    def _lines(self, rows: list[list[str]]) -> bytes:
        text = io.StringIO()
        csv.writer(text, delimiter="\t", lineterminator="\n").writerows(rows)
        return text.getvalue().encode()

    def _row(self, it: Iteration) -> list[str]:
        return [
            (it.commit or "")[:7],
            "" if it.value is None else f"{it.value:.6f}",
            "" if it.peak_memory_mb is None else f"{it.peak_memory_mb / 1024:.2f}",
            it.status,
            one_line(it.description) + (self.mark if it.value is not None else ""),
        ]

    def write(self, history: list[Iteration]) -> None:
        header = ["commit", one_line(self.cfg.metric), "memory_gb", "status", "description"]
        write_atomically(self.path, self._lines([header, *map(self._row, history)]))

    def append(self, it: Iteration) -> None:
        with open(self.path, "ab") as f:
            f.write(self._lines([self._row(it)]))
