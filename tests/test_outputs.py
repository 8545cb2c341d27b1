"""What an experiment leaves behind is untrusted: predictions that are a symlink, a FIFO or a
huge sparse file are a recorded crash with one line, read without following links, never loaded
whole; and the training log is the orchestrator's own file, which train.py cannot replace."""

from __future__ import annotations

import shutil
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from autoresearch.core import config
from autoresearch.store.workspace import copy_for_experiment
from autoresearch.training import task
from autoresearch.training.experiment import Trainer, experiments_root
from autoresearch.training.outputs import OutputError, collect_predictions

SAVE = "import numpy as np, prepare\nprepare.save_predictions(np.zeros(10000, dtype=np.int64))\n"


@pytest.fixture(autouse=True)
def experiments_removed(ws):
    """The experiment folders and data view these tests make outside the workspace."""
    yield
    shutil.rmtree(experiments_root(ws / "store"), ignore_errors=True)


def train(ws: Path, body: str, mode: str = "none"):
    cfg = config.load(ws, {"budget_secs": 20, "grace_secs": 2, "sandbox": mode})
    task.ensure_data(ws, cfg)
    root = experiments_root(ws / "store")
    workdir = copy_for_experiment(ws, root / "0001", textwrap.dedent(body))
    return Trainer.prepare(ws, cfg, root).run(workdir, ws / "out"), ws / "out"


@pytest.mark.parametrize("mode", ["none", "bwrap"])
def test_predictions_that_are_a_symlink_are_not_followed(ws, mode):
    body = (
        SAVE
        + "import os\nos.remove('predictions.npy')\nos.symlink('/etc/passwd', 'predictions.npy')\n"
    )
    outcome, out = train(ws, body, mode)
    assert outcome.status == "crash"
    assert outcome.reason == (
        "bad predictions: predictions.npy is a symbolic link; only a regular file is read"
    )
    assert not (out / "predictions.npy").exists()  # /etc/passwd was not copied into the store


def test_predictions_that_are_a_fifo_do_not_hang_the_orchestrator(ws):
    started = time.time()
    outcome, _ = train(ws, "import os\nos.mkfifo('predictions.npy')\n")
    assert time.time() - started < 15
    assert outcome.status == "crash"
    assert outcome.reason == (
        "bad predictions: predictions.npy is not a regular file; only a regular file is read"
    )


def test_a_huge_sparse_predictions_file_is_refused_before_it_is_read(ws):
    body = "f = open('predictions.npy', 'wb')\nf.seek(8 * 2**30)\nf.write(b'x')\nf.close()\n"
    outcome, out = train(ws, body)
    assert outcome.status == "crash"
    assert outcome.reason.startswith("bad predictions: predictions.npy is 8,589,934,593 bytes")
    assert not (out / "predictions.npy").exists()


def test_a_header_that_promises_more_than_the_file_holds(tmp_path):
    good = tmp_path / "good.npy"
    np.save(good, np.zeros(10000, dtype=np.int64))
    cut = tmp_path / "cut.npy"
    cut.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(OutputError, match="is truncated: its header promises 80,128 bytes"):
        collect_predictions(cut, tmp_path / "copy.npy")
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(OutputError, match="holds Python objects"):
        collect_predictions(objects, tmp_path / "copy.npy")
    collect_predictions(good, tmp_path / "copy.npy")
    assert (tmp_path / "copy.npy").read_bytes() == good.read_bytes()


@pytest.mark.parametrize("mode", ["none", "bwrap"])
def test_train_py_cannot_replace_the_training_log(ws, mode):
    """The log is written by the orchestrator outside the experiment folder: a FIFO or a link to
    /dev/zero named train.log in the experiment is just a file nobody reads."""
    body = SAVE + (
        "import os\nprint('the real output')\n"
        "os.mkfifo('train.log')\nos.symlink('/dev/zero', 'log.txt')\n"
    )
    started = time.time()
    outcome, out = train(ws, body, mode)
    assert outcome.status == "ok" and time.time() - started < 15
    assert outcome.log_path == out / "train.log" and outcome.log_path.is_file()
    assert "the real output" in outcome.log_path.read_text()


def test_predictions_padded_after_the_array_are_refused_and_not_stored(ws):
    """A valid (10000,) int64 array followed by 200 MiB of zeros: scored as the array, it would
    put 200 MiB into the store for every training run."""
    body = SAVE + "with open('predictions.npy', 'ab') as f:\n    f.write(bytes(200 * 2**20))\n"
    outcome, out = train(ws, body)
    assert outcome.status == "crash"
    assert outcome.reason == (
        "bad predictions: predictions.npy has 209,715,200 bytes after the array its header "
        "describes (80,128 bytes); save the array alone"
    )
    assert not (out / "predictions.npy").exists()


def test_a_1_gb_predictions_array_is_refused_before_it_is_read(ws):
    """A header promising 1 GiB of int64 (a sparse file: nothing is written; within the disk
    limit) is refused from the file's size, before any of it is read."""
    body = (
        "import numpy as np\n"
        "with open('predictions.npy', 'wb') as f:\n"
        "    np.lib.format.write_array_header_1_0(f, {'descr': '<i8', 'fortran_order': False,\n"
        "                                             'shape': (2**30 // 8,)})\n"
        "    f.truncate(f.tell() + 2**30)\n"
    )
    outcome, out = train(ws, body)
    assert outcome.status == "crash"
    assert outcome.reason == (
        "bad predictions: predictions.npy is 1,073,741,952 bytes, over the 268,435,456-byte cap"
    )
    assert not (out / "predictions.npy").exists()


def test_a_second_array_after_the_first_is_refused(tmp_path):
    """np.load would score the first array and never see the second."""
    both = tmp_path / "both.npy"
    with open(both, "wb") as f:
        np.save(f, np.zeros(10000, dtype=np.int64))
        np.save(f, np.ones(10000, dtype=np.int64))
    with pytest.raises(OutputError, match="has 80,128 bytes after the array"):
        collect_predictions(both, tmp_path / "copy.npy")
    assert not (tmp_path / "copy.npy").exists()
