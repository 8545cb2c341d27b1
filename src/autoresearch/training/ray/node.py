"""What runs on a Ray node: one training run of an experiment the orchestrator shipped, under the
same budget, limits and sandbox as a local one. The node gets the experiment's files and the
task's training files (never the labels it is scored on) and sends back the log, the predictions
and the fixed files as they were left; scoring stays with the orchestrator."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from autoresearch.store.layout import PREDICTIONS_NAME
from autoresearch.store.runstate import kill_tagged
from autoresearch.store.workspace import write_tree
from autoresearch.training import sandbox
from autoresearch.training.experiment import (
    DATA_VIEW,
    FIXED_FILES,
    Trainer,
    experiments_root,
    read_plain,
)
from autoresearch.training.local import RunResult
from autoresearch.training.outputs import MAX_PREDICTIONS_BYTES

COMPLETE = ".complete"  # in a node's data view, once every file is written


@dataclass
class Shipment:
    """One training run, as sent to a node."""

    trainer: Trainer  # the run's, with its thread count and run tag
    name: str  # the experiment folder's name: "0003", "0003-1"
    files: dict[str, bytes]  # the experiment's copy of the workspace, by relative path
    seed: int
    data_key: str | None  # names the training files' version; None: the task ships none


@dataclass
class NodeResult:
    result: RunResult  # its paths are the node's
    log: bytes
    predictions: bytes | None  # None: train.py wrote none (or not a plain file)
    fixed: dict[str, bytes | None]  # prepare.py and program.md after training
    host: str


def node_root(tag: str) -> Path:
    """The node's folder for one run's experiments (not the orchestrator's, on a shared host)."""
    root = experiments_root(Path(tag))
    return root.with_name(f"{root.name}-ray")


def train(shipment: Shipment, data: list | None) -> NodeResult:
    """Ray task: write the experiment, train it, send back what scoring needs. data: [the
    object reference of {relative path: bytes}], read only where this node lacks the view."""
    trainer = shipment.trainer
    root = node_root(trainer.tag)
    view = root / DATA_VIEW if shipment.data_key else None
    if view is not None:
        _materialize(view, shipment.data_key, data)
    if trainer.sandboxed and not sandbox.resolve("bwrap")[0]:
        raise RuntimeError(
            f"{socket.gethostname()}: no working bubblewrap here, and the run is sandboxed; "
            "install bubblewrap on this node (or run with --sandbox none)"
        )
    trainer = dataclasses.replace(trainer, root=root, data=view)
    workdir = root / shipment.name
    shutil.rmtree(workdir, ignore_errors=True)
    write_tree(workdir, shipment.files)
    log_path = root / f"{shipment.name}.log"
    try:
        result = trainer.execute(workdir, log_path, shipment.seed)
        predictions = workdir / PREDICTIONS_NAME
        plain = predictions.is_file() and not predictions.is_symlink()
        sent = plain and predictions.stat().st_size <= MAX_PREDICTIONS_BYTES
        return NodeResult(
            result=result,
            log=log_path.read_bytes() if log_path.is_file() else b"",
            predictions=predictions.read_bytes() if sent else None,
            fixed={name: read_plain(workdir / name) for name in FIXED_FILES},
            host=socket.gethostname(),
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        log_path.unlink(missing_ok=True)


def _materialize(view: Path, key: str, data: list | None) -> None:
    """The training files under view, once per version: written beside it, then renamed in."""
    marker = view / COMPLETE
    if read_plain(marker) == key.encode():
        return
    import ray

    files = ray.get(data[0])
    staging = view.with_name(f"{view.name}.{os.getpid()}.{time.time_ns()}")
    write_tree(staging, files)
    (staging / COMPLETE).write_text(key)
    shutil.rmtree(view, ignore_errors=True)
    try:
        staging.rename(view)
    except OSError:  # another worker on this host renamed its copy in first
        shutil.rmtree(staging, ignore_errors=True)


def sweep(tag: str) -> int:
    """Ray task: kill what this run (an earlier orchestrator of it, or one ending now) left
    training on this node, and remove its files here."""
    killed = kill_tagged(tag)
    shutil.rmtree(node_root(tag), ignore_errors=True)
    return killed
