"""Where training runs happen while the orchestrator goes on: a handle per run (start, then a
future to wait on, collect or cancel), on this machine (one at a time) or on Ray (runner/ray_engine.py).
Scoring always happens here, in collect()."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autoresearch.config import Config
from autoresearch.experiment import Trainer
from autoresearch.records import TrainingRun


class WorkerLost(Exception):
    """The worker (or node) training a run died: the run may be tried again."""


@dataclass
class Job:
    """One training run: run k of iteration n."""

    n: int
    k: int
    workdir: Path  # its copy of the workspace, here
    out_dir: Path  # where its log and predictions are kept (the store's)
    seed: int
    started: float = field(default_factory=time.time)
    attempt: int = 1
    future: Future | None = None  # done when the training is
    handle: Any = None  # the engine's own (a Ray object reference)


def in_thread(fn, *args) -> Future:
    """fn(*args) in a daemon thread (an interrupted orchestrator never waits for it)."""
    future: Future = Future()

    def target() -> None:
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(fn(*args))
            except BaseException as err:  # noqa: BLE001 - handed to whoever collects it
                future.set_exception(err)

    threading.Thread(target=target, daemon=True).start()
    return future


class LocalEngine:
    """One run at a time, on this machine, in a thread: the agent proposes meanwhile."""

    slots = 1
    where = "this machine"

    def __init__(self, trainer: Trainer):
        self.trainer = trainer

    def start(self, job: Job) -> None:
        job.future = in_thread(self.trainer.run, job.workdir, job.out_dir, job.seed)

    def collect(self, job: Job) -> TrainingRun:
        return job.future.result()

    def cancel(self, job: Job) -> None:
        """Nothing to do: the run's processes carry RUN_ENV, and the loop kills them on the way
        out (runstate.kill_leftover)."""

    def close(self) -> None:
        pass


def engine_for(trainer: Trainer, cfg: Config, tag: str):
    """The engine the run's settings ask for: Ray for several workers or a cluster address."""
    from autoresearch.runner.cluster import address_of

    if cfg.run.workers == 1 and address_of(cfg.run.ray_address) is None:
        return LocalEngine(trainer)
    from autoresearch.runner.ray_engine import RayEngine

    return RayEngine(trainer, cfg, tag)
