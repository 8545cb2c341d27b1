"""Shared fixtures: the real Fashion-MNIST data, a cache converted once, fresh workspaces."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from autoresearch import config, workspace

REPO = Path(__file__).resolve().parents[1]
DATA_CANDIDATES = [
    os.environ.get("AUTORESEARCH_DATA_DIR", ""),
    str(REPO.parent / "shared" / "data" / "fashion-mnist"),
    "/usr/share/datasets/fashion-mnist",
]


def find_data() -> Path:
    for candidate in DATA_CANDIDATES:
        if candidate and (Path(candidate) / "t10k-labels-idx1-ubyte.gz").is_file():
            return Path(candidate)
    raise RuntimeError(
        "tests need Fashion-MNIST: ../shared/data/fashion-mnist or the Debian package"
    )


DATA_DIR = find_data()


@pytest.fixture(scope="session", autouse=True)
def data_env(tmp_path_factory):
    """Every test (and every train.py it starts) sees the real data and a shared cache."""
    cache = tmp_path_factory.mktemp("cache")
    keys = ("AUTORESEARCH_DATA_DIR", "AUTORESEARCH_CACHE_DIR", "OMP_NUM_THREADS")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ["AUTORESEARCH_DATA_DIR"] = str(DATA_DIR)
    os.environ["AUTORESEARCH_CACHE_DIR"] = str(cache)
    # One thread per training process: tiny models train faster, and a busy machine (two cores
    # shared with the test runner) does not stall OpenMP's spinning threads.
    os.environ["OMP_NUM_THREADS"] = "1"
    yield cache
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def ws(tmp_path) -> Path:
    """A fresh Fashion-MNIST workspace whose training interpreter is this one (it has torch)."""
    directory = tmp_path / "ws"
    workspace.init(directory, "fashion-mnist", sys.executable)
    return directory


@pytest.fixture
def cfg(ws) -> config.Config:
    return config.load(ws)


def _set(code: str, **values) -> str:
    for name, value in values.items():
        old = next(line for line in code.splitlines() if line.startswith(f"{name} = "))
        code = code.replace(old, f"{name} = {value!r}{old[old.index('  #') :]}")
    return code


def started(code: str) -> str:
    """train.py that says so in its log as it starts."""
    return code.replace(
        "def main() -> None:",
        "def main() -> None:\n    print('larger batches: started', flush=True)",
    )


@pytest.fixture(scope="session")
def short_run(tmp_path_factory, data_env) -> Path:
    """A workspace with one real run made by the replay agent (baseline, a keep, a discard; a
    third proposal waits for a resume with --iterations 3). Read it, or copy it to change it."""
    from typer.testing import CliRunner

    from autoresearch.cli import app

    root = tmp_path_factory.mktemp("short-run")
    directory = root / "ws"
    workspace.init(directory, "fashion-mnist", sys.executable)
    base = (directory / "train.py").read_text()
    mlp = _set(base, OPTIMIZER="adam", LEARNING_RATE=0.001, HIDDEN_UNITS=128, NORMALIZE=True)
    proposals = root / "proposals"
    proposals.mkdir()
    for name, code, text in [
        ("001-mlp", mlp, "MLP with Adam\n\nA hidden layer and Adam converge faster."),
        ("002-tiny-lr", _set(mlp, LEARNING_RATE=1e-06), "Tiny learning rate\n\nTo see."),
        ("003-batch", started(_set(mlp, BATCH_SIZE=64)), "Larger batches\n\nMore images a second."),
    ]:
        (proposals / f"{name}.py").write_text(code)
        (proposals / f"{name}.md").write_text(text)
    argv = ["run", str(directory), "--agent", "replay", "--replay-dir", str(proposals)]
    result = CliRunner().invoke(app, [*argv, "--iterations", "2", "--budget", "3", "--grace", "30"])
    assert result.exit_code == 0, result.output
    return directory
