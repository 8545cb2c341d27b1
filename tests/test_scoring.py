"""Trusted scoring: every kind of bad prediction becomes a one-line reason, never a traceback."""

import gzip

import numpy as np
import pytest
from conftest import DATA_DIR

from autoresearch import task

LABELS = np.frombuffer(
    gzip.decompress((DATA_DIR / "t10k-labels-idx1-ubyte.gz").read_bytes()), np.uint8, offset=8
)


def score(ws, cfg, tmp_path, array=None, raw=None):
    path = tmp_path / "predictions.npy"
    if array is not None:
        np.save(path, array)
    if raw is not None:
        path.write_bytes(raw)
    return task.score(ws, cfg, path)


def test_perfect_and_partial_predictions(ws, cfg, tmp_path):
    assert score(ws, cfg, tmp_path, LABELS.astype(np.int64)) == (1.0, None)
    half = LABELS.astype(np.int64).copy()
    half[:5000] = (half[:5000] + 1) % 10
    assert score(ws, cfg, tmp_path, half) == (0.5, None)


@pytest.mark.parametrize(
    "array, expected",
    [
        (np.zeros(9999, np.int64), "shape (10000,)"),
        (np.zeros((10000, 10), np.float32), "shape (10000,)"),
        (np.zeros(10000, np.float32), "integer class indices"),
        (np.full(10000, np.nan), "NaN"),
        (np.full(10000, 10), "0..9"),
        (np.full(10000, -1), "0..9"),
        (np.array(["a"] * 10000), "integer class indices"),
    ],
)
def test_bad_predictions_are_a_crash_with_the_reason(ws, cfg, tmp_path, array, expected):
    value, reason = score(ws, cfg, tmp_path, array)
    assert value is None and reason.startswith("bad predictions:") and expected in reason
    assert "\n" not in reason


def test_missing_predictions(ws, cfg, tmp_path):
    value, reason = task.score(ws, cfg, tmp_path / "predictions.npy")
    assert value is None and "no predictions saved" in reason


def test_garbage_and_pickled_files_are_refused(ws, cfg, tmp_path):
    value, reason = score(ws, cfg, tmp_path, raw=b"not a numpy file")
    assert value is None and "not a readable .npy" in reason
    np.save(tmp_path / "predictions.npy", np.array([object()] * 10000), allow_pickle=True)
    value, reason = task.score(ws, cfg, tmp_path / "predictions.npy")
    assert value is None and "not a readable .npy" in reason


def test_a_broken_prepare_is_a_task_error(ws, cfg):
    (ws / "prepare.py").write_text("import nonexistent_module_xyz\n")
    with pytest.raises(task.TaskError, match="cannot be imported"):
        task.load_prepare(ws)
