"""The task's fixed side, run in the orchestrator's own process: data checks and trusted scoring.

With metric_source = "log" the orchestrator never imports prepare.py: it belongs to the
experiment's own environment (Karpathy's imports torch, rustbpe, tiktoken, pyarrow, ...) and runs
only inside train.py's process, which reports the metric itself.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from autoresearch.core.config import Config
from autoresearch.core.log_metrics import self_reported
from autoresearch.training.train_command import readonly_paths


class TaskError(Exception):
    """prepare.py cannot be loaded or cannot find its data."""


def data_dir(workspace: Path, cfg: Config) -> str | None:
    """The configured data folder, relative paths resolved against the workspace."""
    if not cfg.data_dir:
        return None
    return str((workspace / Path(cfg.data_dir).expanduser()).resolve())


@contextmanager
def _data_env(workspace: Path, cfg: Config):
    configured = data_dir(workspace, cfg)
    old = os.environ.get("AUTORESEARCH_DATA_DIR")
    if configured:
        os.environ["AUTORESEARCH_DATA_DIR"] = configured
    try:
        yield
    finally:
        if configured:
            if old is None:
                os.environ.pop("AUTORESEARCH_DATA_DIR", None)
            else:
                os.environ["AUTORESEARCH_DATA_DIR"] = old


_LOADED: dict[Path, ModuleType] = {}


def load_prepare(workspace: Path) -> ModuleType:
    """The workspace's prepare.py (the fixed file), imported once per process under a private
    name: what an experiment later writes to disk cannot change how it is scored."""
    path = (workspace / "prepare.py").resolve()
    if path in _LOADED:
        return _LOADED[path]
    if not path.is_file():
        raise TaskError(f"{path}: not found; the workspace needs a prepare.py with score()")
    name = f"_autoresearch_prepare_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - any import failure is reported in one line
        raise TaskError(f"{path}: cannot be imported: {type(err).__name__}: {err}") from None
    sys.modules.pop(name, None)
    if not callable(getattr(module, "score", None)):
        raise TaskError(f"{path}: has no score(predictions_path) function")
    _LOADED[path] = module
    return module


def required_modules(workspace: Path) -> tuple[str, ...]:
    return tuple(getattr(load_prepare(workspace), "REQUIRED_MODULES", ("numpy",)))


def probe_modules(workspace: Path, cfg: Config) -> tuple[str, ...]:
    """What the preflight imports with the training interpreter: the task's required modules,
    or (metric_source = "log") the workspace's prepare.py itself, as train.py will."""
    if self_reported(cfg):
        return ("prepare",) if (workspace / "prepare.py").is_file() else ()
    return required_modules(workspace)


def _readonly_paths_present(cfg: Config) -> str:
    """metric_source = "log": the data is whatever train.py reads; the readonly paths exist."""
    paths = readonly_paths(cfg)
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise TaskError(
            f"{', '.join(missing)} does not exist; train.py reads it (read-only, with no network "
            "in the sandbox), so create it first (a Karpathy checkout: `uv run prepare.py` fills "
            "~/.cache/autoresearch, one `uv run train.py` outside autoresearch downloads the "
            "kernels into ~/.cache/huggingface/hub)"
        )
    shown = f"train.py may read {', '.join(map(str, paths))}" if paths else "no readonly_paths"
    return f'{shown}; prepare.py is not imported here (metric_source = "log")'


def ensure_data(workspace: Path, cfg: Config) -> str:
    """Find, verify and cache the data before any training. One line, or TaskError."""
    if self_reported(cfg):
        return _readonly_paths_present(cfg)
    module = load_prepare(workspace)
    if not callable(getattr(module, "ensure_data", None)):
        return "prepare.py has no ensure_data(); nothing to check"
    with _data_env(workspace, cfg):
        try:
            found = str(module.ensure_data())
            if callable(getattr(module, "load_labels", None)):
                module.load_labels()  # into memory now, before any train.py runs
            return found
        except Exception as err:  # noqa: BLE001 - the task's own message is the one to show
            raise TaskError(str(err).splitlines()[0] if str(err) else type(err).__name__) from None


def training_files(workspace: Path, cfg: Config) -> dict[str, Path] | None:
    """What train.py may read ({path under its data folder: source}), or None when the task
    does not say (then the configured data_dir is shown to train.py as it is)."""
    if self_reported(cfg):
        return None
    module = load_prepare(workspace)
    if not callable(getattr(module, "training_files", None)):
        return None
    with _data_env(workspace, cfg):
        return {str(k): Path(v) for k, v in module.training_files().items()}


def private_paths(workspace: Path, cfg: Config) -> list[Path]:
    """Where the task keeps what train.py must not read (labels above all)."""
    configured = data_dir(workspace, cfg)
    found = [Path(configured)] if configured else []
    if self_reported(cfg):
        return [(workspace / p).absolute() for p in found]
    module = load_prepare(workspace)
    if callable(getattr(module, "private_paths", None)):
        with _data_env(workspace, cfg):
            found += [Path(p).expanduser() for p in module.private_paths()]
    return [(workspace / p).absolute() for p in found]


HOLDOUT_ENV = "AUTORESEARCH_HOLDOUT"  # "0": the task scores no holdout (config `holdout`)


def score(
    workspace: Path, cfg: Config, predictions: Path
) -> tuple[dict[str, float] | None, str | None]:
    """({metric: value, ...}, None) for good predictions, (None, one-line reason) for bad ones.
    score() may return one number (the decision metric) or a dict of numbers that holds it; the
    orchestrator decides on cfg.metric alone. It runs with AUTORESEARCH_HOLDOUT set from the
    config (in this process only: train.py never sees it)."""
    module = load_prepare(workspace)
    saved = os.environ.get(HOLDOUT_ENV)
    os.environ[HOLDOUT_ENV] = "1" if cfg.holdout else "0"
    try:
        with _data_env(workspace, cfg):
            returned = module.score(predictions)
            found = returned if isinstance(returned, dict) else {cfg.metric: returned}
            scores = {str(name): float(value) for name, value in found.items()}
    except Exception as err:  # noqa: BLE001 - bad predictions are a recorded crash
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        return None, f"bad predictions: {text}"
    finally:
        if saved is None:
            os.environ.pop(HOLDOUT_ENV, None)
        else:
            os.environ[HOLDOUT_ENV] = saved
    if cfg.metric not in scores:
        named = ", ".join(sorted(scores)) or "nothing"
        return None, f"bad predictions: score() returned no '{cfg.metric}' (it returned {named})"
    for name, value in scores.items():
        if not math.isfinite(value):
            what = "the score" if name == cfg.metric else f"the score '{name}'"
            return None, f"bad predictions: {what} is {value} (not a finite number)"
    return scores, None
