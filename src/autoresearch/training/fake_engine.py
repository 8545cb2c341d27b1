"""An engine with no processes, for tests and benchmarks of the driver: each training "finishes"
after a scripted (virtual) time with a scripted score, or loses its worker, in an order fixed by
the script alone. Time is virtual: waiting advances a clock to the next training to finish, so
a night of scheduling replays in milliseconds and always the same way. A proposal the driver is
waiting for (the agent's answer) comes before any training finishes."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from autoresearch.core.records import OK, TrainingRun
from autoresearch.training.engines import Job, WorkerLost, first_done


@dataclass
class Outcome:
    """What one training does: how long it takes (virtual seconds) and its score; `lost`: its
    worker dies instead (WorkerLost, with this text)."""

    seconds: float
    value: float | None = None
    status: str = OK
    lost: str | None = None
    failure: str | None = None  # a crash's kind (records.EXCEPTION...)


class FakeEngine:
    where = "a fake engine"

    def __init__(self, slots: int, script: Callable[[Job], Outcome]):
        self.slots, self.script = slots, script
        self.clock = 0.0  # virtual seconds since the start
        self.started: list[Job] = []  # every start, retries included, in order
        self.running: list[tuple[float, int, Job]] = []  # a heap by finishing time, then start
        self.training: set[Future] = set()  # the futures of those running
        self.outcomes: dict[int, Outcome] = {}  # by id(job)
        self.cancelled: list[Job] = []

    def start(self, job: Job) -> None:
        outcome = self.script(job)
        self.outcomes[id(job)] = outcome
        job.future = Future()
        heapq.heappush(self.running, (self.clock + outcome.seconds, len(self.started), job))
        self.training.add(job.future)
        self.started.append(job)

    def wait(self, futures: list[Future]) -> set[Future]:
        """The agent's answer if one is awaited (it takes no virtual time), else the training
        that finishes next."""
        others = [f for f in futures if f not in self.training]
        if others:
            return first_done(others)
        at, _, job = heapq.heappop(self.running)
        self.training.discard(job.future)
        self.clock = max(self.clock, at)
        job.future.set_result(None)
        return {job.future}

    def collect(self, job: Job) -> TrainingRun:
        outcome = self.outcomes.pop(id(job))
        if outcome.lost is not None:
            raise WorkerLost(outcome.lost)
        return TrainingRun(
            status=outcome.status,
            value=outcome.value,
            reason=None if outcome.status == OK else f"{outcome.status} (scripted)",
            train_seconds=outcome.seconds,
            wall_seconds=outcome.seconds,
            peak_memory_mb=None,
            log_path=None,
            seed=job.seed,
            failure=outcome.failure,
        )

    def cancel(self, job: Job) -> None:
        self.running = [r for r in self.running if r[2] is not job]
        self.training.discard(job.future)
        heapq.heapify(self.running)
        self.cancelled.append(job)

    def close(self) -> None:
        pass
