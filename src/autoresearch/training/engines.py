"""Where training runs happen while the orchestrator goes on: a handle per run (start, then a
future to wait on, collect or cancel), on this machine (one at a time), on Ray
(runner/ray_engine.py) or nowhere (fake_engine.py, for tests and benchmarks). Scoring always
happens here, in collect(). An engine that starts a process here says so through the job's
`process` future (its pid and start time), which the driver records in the store, so that a start
after a killed orchestrator ends what it left training."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autoresearch.core.records import TrainingRun
from autoresearch.store.runstate import created
from autoresearch.training.experiment import Trainer


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
    process: Future | None = None  # (pid, created) once its process runs here; None: not here
    pid: int | None = None  # the driver's note that it recorded the process
    handle: Any = None  # the engine's own (a Ray object reference)


def first_done(futures: list[Future]) -> set[Future]:
    """Waits until one of futures is done; those done (an engine's wait, for real time)."""
    return wait(futures, return_when=FIRST_COMPLETED)[0]


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
    wait = staticmethod(first_done)

    def __init__(self, trainer: Trainer):
        self.trainer = trainer

    def start(self, job: Job) -> None:
        process: Future = Future()
        job.process = process
        job.future = in_thread(
            self.trainer.run,
            job.workdir,
            job.out_dir,
            job.seed,
            lambda pid: process.set_result((pid, created(pid))),
        )

    def collect(self, job: Job) -> TrainingRun:
        return job.future.result()

    def cancel(self, job: Job) -> None:
        """SIGKILL its process group (what it started with another group carries RUN_ENV, and
        the loop kills that on the way out: runstate.kill_leftover)."""
        if job.process is not None and job.process.done():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(job.process.result()[0], signal.SIGKILL)

    def close(self) -> None:
        pass
