"""The Python API for notebooks: `autoresearch.open_run(path)` on a workspace or a bundle.

A thin face on the read model `status --json` prints (views.RunView, from runs.read): the same
numbers, typed; the code, diffs and logs are read from the store when asked for.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from autoresearch.core.config import Config
from autoresearch.loop.runs import open_run as open_store
from autoresearch.store.layout import LOG_NAME
from autoresearch.store.store import Store
from autoresearch.views import model as views
from autoresearch.views.bundle import resolve
from autoresearch.views.snapshot import read


class Iterations(list):
    """The run's iterations (views.Entry), oldest first."""

    def to_pandas(self):
        """A DataFrame with one row per iteration, indexed by its number (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_pandas needs pandas: pip install pandas") from None
        return pd.DataFrame([asdict(e) for e in self]).set_index("iteration")


class Run:
    """One run, read-only. `iterations`, `best`, `noise`, `settings` are read once, when it is
    opened (open it again to see a run that goes on)."""

    def __init__(self, path: str | Path, run: str | None = None):
        source = resolve(Path(path))
        self.path = Path(path)
        self.bundle = source.manifest  # what a bundle says of itself (its machine); None
        store = open_store(source.workspace, run)
        try:
            self.view: views.RunView = read(store)
            self.settings: Config = store.config()
        finally:
            store.close()
        self._dir = store.dir
        self.id = self.view.run
        self.iterations = Iterations(self.view.iterations)
        self.noise: views.Noise = self.view.noise
        self.metric: views.Metric = self.view.metric
        self.origin: dict | None = self.view.origin

    def __repr__(self) -> str:
        best = self.best
        shown = (
            "no score yet" if best is None else f"{best.value:.4f} at iteration {best.iteration}"
        )
        return f"<run {self.id} of {self.path}: {len(self.iterations)} iterations, best {shown}>"

    @property
    def best(self) -> views.Entry | None:
        n = self.view.best.iteration
        return next((e for e in self.iterations if e.iteration == n), None)

    def _read(self, n: int, run: int = 0):
        """Iteration n, whole, and the folder of its run `run`."""
        store = Store(self._dir, readonly=True)
        try:
            found, folder = store.iteration(n), store.run_dir(n, run)
        finally:
            store.close()
        if found is None:
            raise KeyError(f"run {self.id} has no iteration {n}")
        return found, folder

    def train_py(self, n: int) -> str:
        """Iteration n's train.py ("" where it had none)."""
        return self._read(n)[0].train_py

    def diff(self, n: int) -> str:
        """Iteration n's change to the train.py it was proposed from, as a unified diff."""
        return self._read(n)[0].diff

    def log(self, n: int, run: int = 0) -> str:
        """The training log of iteration n (of its run `run`, where it trained several times)."""
        path = self._read(n, run)[1] / LOG_NAME
        return path.read_text(errors="replace") if path.is_file() else ""


def open_run(path: str | Path, run: str | None = None) -> Run:
    """The run `run` (default the latest) of a workspace folder or a bundle file."""
    return Run(path, run)
