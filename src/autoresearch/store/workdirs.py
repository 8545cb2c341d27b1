"""The copies of a run's workspace that its agent and its trainings work in, one per training run
(outside the workspace and the store: experiment.experiments_root), named in one place."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from autoresearch.store.layout import number
from autoresearch.store.workspace import copy_for_experiment


def name(n: int, k: int = 0) -> str:
    """The folder of run k of iteration n (the first run's is the iteration's own)."""
    return number(n) if k == 0 else f"{number(n)}-{k}"


class Workdirs:
    def __init__(self, source: Path, root: Path, program: Callable[[], bytes | None]):
        """source: the run's copy of the workspace; root: where the copies go; program: the
        program.md an experiment runs under now, written into each copy (None: the source's)."""
        self.source, self.root, self.program = source, root, program

    def copy(self, n: int, k: int, train_py: str | None) -> Path:
        """A fresh copy for run k of iteration n, with train_py (None: the workspace's own)."""
        return self.make(name(n, k), train_py)

    def make(self, folder: str, train_py: str | None) -> Path:
        """A fresh copy named folder (a promotion's or an ablation's training)."""
        workdir = copy_for_experiment(self.source, self.root / folder, train_py)
        program = self.program()
        if program is not None:
            (workdir / "program.md").write_bytes(program)
        return workdir

    def remove(self, n: int, k: int = 0) -> None:
        shutil.rmtree(self.root / name(n, k), ignore_errors=True)
