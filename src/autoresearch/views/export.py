"""The way out of a run: the best (or a given) iteration's train.py, and how it compares."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from autoresearch.core.config import Config
from autoresearch.core.records import Iteration
from autoresearch.core.text import fmt
from autoresearch.store.store import Store
from autoresearch.views.snapshot import snapshot


class ExportError(Exception):
    """Nothing to export: one line saying why."""


def pick(store: Store, iteration: int | None) -> Iteration:
    """The iteration to export: the given one, else the run's best."""
    history = store.iterations()
    if iteration is None:
        iteration = snapshot(store)["best"]["iteration"]
        if iteration is None:
            raise ExportError(f"run {store.run_id} has no iteration with a score yet")
    found = next((it for it in history if it.iteration == iteration), None)
    if found is None:
        last = history[-1].iteration if history else None
        known = "none" if last is None else f"0 to {last}"
        raise ExportError(f"run {store.run_id} has no iteration {iteration} (it has {known})")
    if not found.train_py:
        raise ExportError(
            f"iteration {iteration} of run {store.run_id} has no train.py "
            f"({found.status}: {found.reason or 'no proposal'})"
        )
    return found


def write(text: str, path: Path) -> Path:
    """Writes text to path (a folder gets a train.py in it) atomically; returns the file."""
    if path.is_dir():
        path = path / "train.py"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")  # as stored, whatever the locale
        tmp.replace(path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"cannot write {path}: {err.strerror or err}") from None
    return path


def compared(store: Store) -> str:
    """ "best val_accuracy 0.8712 at iteration 7 (baseline 0.8401, +0.0311)", or why there is
    no best."""
    cfg = Config.model_validate(store.get("config"))
    snap = snapshot(store)
    best, its = snap["best"], snap["iterations"]
    if best["iteration"] is None:
        return f"no {cfg.metric} yet: no iteration has a score"
    base = its[0]["value"] if its else None
    text = f"best {cfg.metric} {fmt(best['value'])} at iteration {best['iteration']}"
    if best["iteration"] == 0 or base is None:
        return text + " (the baseline: no experiment beat it)"
    return text + f" (baseline {fmt(base)}, {best['value'] - base:+.4f})"


def hint(workspace: str, run_id: str | None = None) -> str:
    """The command that writes the best train.py out of a run."""
    words = ["autoresearch", "export", workspace, *(["--run", run_id] if run_id else [])]
    return f"the best train.py: {shlex.join(words)} (to stdout; -o PATH writes a file)"
