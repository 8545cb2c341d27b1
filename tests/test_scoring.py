"""Trusted scoring: every kind of bad prediction becomes a one-line reason, never a traceback."""

import gzip
import json

import numpy as np
import pytest
from conftest import DATA_DIR

from autoresearch.training import task

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
    perfect = {"val_accuracy": 1.0, "holdout_val_accuracy": 1.0}
    assert score(ws, cfg, tmp_path, LABELS.astype(np.int64)) == (perfect, None)
    half = LABELS.astype(np.int64).copy()
    half[:5000] = (half[:5000] + 1) % 10
    cfg.holdout = False  # the seeds' protocol: one score on all 10,000
    assert score(ws, cfg, tmp_path, half) == ({"val_accuracy": 0.5}, None)


def test_the_test_images_split_into_a_decision_half_and_a_holdout_half(ws, cfg, tmp_path):
    decision = task.load_prepare(ws).decision_half()
    assert decision.sum() == 5000
    assert all((LABELS[decision] == c).sum() == 500 for c in range(10))  # 500 of each class
    assert 2000 < decision[:5000].sum() < 3000  # not the first half of the file
    right_on_decision = LABELS.astype(np.int64).copy()
    right_on_decision[~decision] = (right_on_decision[~decision] + 1) % 10
    expected = {"val_accuracy": 1.0, "holdout_val_accuracy": 0.0}
    assert score(ws, cfg, tmp_path, right_on_decision) == (expected, None)
    cfg.holdout = False
    assert score(ws, cfg, tmp_path, right_on_decision) == ({"val_accuracy": 0.5}, None)


def test_a_dict_of_scores_needs_the_decision_metric_and_finite_numbers(tmp_path, cfg):
    (tmp_path / "prepare.py").write_text(
        "import json\ndef score(path):\n    return json.load(open(path))\n"
    )
    for returned, reason in [
        ({"other": 1.0}, "score() returned no 'val_accuracy' (it returned other)"),
        ({"val_accuracy": 0.5, "other": float("nan")}, "the score 'other' is nan"),
        ({"val_accuracy": "x"}, "could not convert string to float"),
    ]:
        (tmp_path / "p.json").write_text(json.dumps(returned))
        value, why = task.score(tmp_path, cfg, tmp_path / "p.json")
        assert value is None and why.startswith("bad predictions: ") and reason in why, why
    (tmp_path / "p.json").write_text('{"val_accuracy": 0.5, "other": 2}')
    assert task.score(tmp_path, cfg, tmp_path / "p.json") == (
        {"val_accuracy": 0.5, "other": 2.0},
        None,
    )


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
