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


def single_run(ws: Path) -> None:
    """One training per iteration (no noise runs, no confirmation): for tests of the loop's
    mechanics, which count trainings or need one run's value."""
    with open(ws / "autoresearch.toml", "a") as f:
        f.write("\n[loop]\nnoise_runs = 1\nconfirm_runs = 0\n")


@pytest.fixture
def ws(tmp_path) -> Path:
    """A fresh Fashion-MNIST workspace whose training interpreter is this one (it has torch)."""
    directory = tmp_path / "ws"
    workspace.init(directory, "fashion-mnist", sys.executable)
    return directory


@pytest.fixture
def cfg(ws) -> config.Config:
    return config.load(ws)
