"""The asynchronous loop (`[run] workers`, `asynchronous`): up to `slots` training runs at once
on an engine (runner/engines.py) while the agent proposes in a thread, so that a trainer never
waits for the agent. A proposal is drawn from the best at the moment it is asked for, as soon as a
worker is free or about to be (one proposal waits ready at most); the prompt lists what is being
trained. Each iteration is decided when its last run is recorded, against the best at that moment
(with the confirmation rule), so the best never moves backwards, whatever order results arrive in.

Everything that writes the store happens here, in the orchestrator's main thread."""

from __future__ import annotations

import shutil
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path

from autoresearch.agents.base import AgentError, AgentExhausted
from autoresearch.context import ContextTooSmall
from autoresearch.records import (
    BASELINE,
    CRASH,
    FINISHED,
    STOPPED,
    TRAINING,
    Iteration,
    TrainingRun,
)
from autoresearch.runner.engines import Job, WorkerLost, in_thread
from autoresearch.runs import plural
from autoresearch.safe_text import DESCRIPTION_CHARS, shorten
from autoresearch.stops import baseline_failed
from autoresearch.store import incumbent
from autoresearch.trials import seed_of

ATTEMPTS = 2  # a run whose worker or node dies is trained once more, then recorded as a crash


@dataclass
class Flight:
    """An iteration in training: its runs recorded, and those training now (by run number)."""

    it: Iteration
    first: Path  # the copy of the workspace its first run trains in
    notes: list[str]  # recorded with it
    done: dict[int, TrainingRun] = field(default_factory=dict)
    running: dict[int, Job] = field(default_factory=dict)

    def runs(self) -> list[TrainingRun]:
        return [self.done[k] for k in sorted(self.done)]


class Scheduler:
    def __init__(self, loop, engine):
        self.loop, self.engine = loop, engine
        self.cfg, self.store, self.trials, self.say = loop.cfg, loop.store, loop.trials, loop.say
        self.flights: dict[int, Flight] = {}
        self.ready: list[tuple[Iteration, list[str], Path]] = []  # proposals waiting for a slot
        self.asking: tuple[object, Future] | None = None  # (Asked, the agent's answer)
        self.stop = None  # the LoopResult the run ends with, once no more may start
        loop.in_flight = lambda: sorted(n for n, f in self.flights.items() if f.running)

    def run(self, history: list[Iteration]):
        from autoresearch.loop import LoopResult

        try:
            self._resume(history)
            while True:
                self._launch(history)
                self._ask(history)
                waiting = [job.future for f in self.flights.values() for job in f.running.values()]
                if self.asking is not None:
                    waiting.append(self.asking[1])
                if not waiting:
                    break
                done, _ = wait(waiting, return_when=FIRST_COMPLETED)
                if self.asking is not None and self.asking[1] in done:
                    self._answered(history)
                for flight in list(self.flights.values()):
                    for job in [j for j in flight.running.values() if j.future in done]:
                        self._finished(flight, job, history)
        except BaseException:  # Ctrl-C, a store that cannot be written: nothing left training
            for flight in self.flights.values():
                for job in flight.running.values():
                    self.engine.cancel(job)
            raise
        if history and baseline_failed(history[0]):
            return self.loop.baseline_stop(history[0])
        return self.stop or LoopResult(FINISHED, f"{plural(len(history) - 1, 'iteration')} done")

    # --- what flies ---
    def _resume(self, history: list[Iteration]) -> None:
        """The baseline, if it is not recorded; the proposals a stop left in training."""
        if not history:
            self._fly(*self.loop.baseline_iteration(), [])
            return
        recorded = {h.iteration for h in history}
        for n in self.store.pending_numbers():
            if n not in recorded:
                it, notes = self.store.pending(n)
                self.say(f"iteration {n}: resuming the proposal recorded before the stop")
                self._fly(it, self.loop.workdir(n, it.train_py), notes)

    def _fly(self, it: Iteration, first: Path, notes: list[str]) -> None:
        flight = Flight(it, first, notes)
        for k, run in enumerate(self.store.runs(it.iteration).get(it.iteration, [])):
            flight.done[k] = run
        if flight.done:
            self.say(f"iteration {it.iteration}: {len(flight.done)} of its runs recorded before")
        self.flights[it.iteration] = flight

    def _best(self, flight: Flight, history: list[Iteration]) -> Iteration | None:
        """What the flight is measured against: the best now (none for the baseline)."""
        return None if flight.it.iteration == 0 else incumbent(history, self.cfg.better)

    def _busy(self) -> int:
        return sum(len(f.running) for f in self.flights.values())

    def _launch(self, history: list[Iteration]) -> None:
        """Free slots to the runs the iterations in flight still need (oldest first), then to
        the proposals that wait."""
        for n in sorted(self.flights):
            flight = self.flights[n]
            if not flight.running:  # a resumed one may have all its runs recorded already
                self._complete(flight, history)
                if n not in self.flights:
                    continue
            best = self._best(flight, history)
            wanted = self.trials.wanted(flight.runs(), best)
            while (
                self._busy() < self.engine.slots and len(flight.done) + len(flight.running) < wanted
            ):
                self._start(flight, len(flight.done) + len(flight.running), wanted, best)
        while self.ready and self._busy() < self.engine.slots and not self._stopped():
            it, notes, workdir = self.ready.pop(0)
            self.say(
                f"iteration {it.iteration}: training: {shorten(it.description, DESCRIPTION_CHARS)}"
            )
            self._fly(it, workdir, notes)
            self._launch(history)

    def _stopped(self) -> bool:
        """A stop that also leaves the ready proposals untrained (a resume trains them)."""
        return self.stop is not None and self.stop.state == STOPPED

    def _start(self, flight: Flight, k: int, wanted: int, best: Iteration | None) -> None:
        it = flight.it
        code = it.train_py if it.iteration else None  # the baseline: as given, any bytes
        workdir = (
            flight.first if k == 0 else self.loop.copy_workspace(f"{it.iteration:04d}-{k}", code)
        )
        self.trials.announce(it, k, wanted, best)
        job = Job(
            it.iteration, k, workdir, self.store.run_dir(it.iteration, k), seed_of(it.iteration, k)
        )
        self.engine.start(job)
        flight.running[k] = job

    # --- the agent ---
    def _ask(self, history: list[Iteration]) -> None:
        """Ask for the next proposal when a worker is free or about to be, while more are due."""
        if self.asking is not None or self.ready or self.stop is not None or not history:
            return  # (no history: the baseline is training, and every proposal starts from it)
        if baseline_failed(history[0]) or len(self.flights) > self.engine.slots:
            return
        experiments = [f for f in self.flights.values() if f.it.iteration != 0]
        if len(history) - 1 + len(experiments) >= self.cfg.loop.iterations:
            return
        loop = self.loop
        reason = loop.before_proposal(history)
        if reason:
            self._end(FINISHED, reason)
            return
        n = loop.new_number(history)
        self.store.drop_runs(n)  # none can belong to a proposal that was never stored
        in_flight = [f.it for f in experiments]
        try:
            asked = loop.ask(n, incumbent(history, self.cfg.better), history, in_flight)
        except ContextTooSmall as err:
            self._end(STOPPED, str(err))
            return
        self.asking = (asked, in_thread(loop.propose, asked.request))

    def _answered(self, history: list[Iteration]) -> None:
        asked, future = self.asking
        self.asking = None
        try:
            proposal = future.result()
        except AgentExhausted as err:
            self._end(FINISHED, str(err))
            return
        except AgentError as err:
            self._end(STOPPED, f"agent {self.loop.agent.name}: {err}")
            return
        it, notes, workdir = self.loop.accept(asked, proposal)
        if it.reason is None:
            self.ready.append((it, notes, workdir))
        else:
            self.record(it, notes, history)

    def _end(self, state: str, message: str) -> None:
        from autoresearch.loop import LoopResult

        if self.stop is None:
            self.stop = LoopResult(state, message)
            if self.flights:
                self.say(f"stopping once the experiments in training are recorded: {message}")

    # --- results ---
    def _finished(self, flight: Flight, job: Job, history: list[Iteration]) -> None:
        del flight.running[job.k]
        try:
            run = self.engine.collect(job)
        except WorkerLost as err:
            if job.attempt < ATTEMPTS:
                self.say(f"iteration {job.n}: run {job.k + 1} lost its worker ({err}); again")
                retry = Job(
                    job.n, job.k, job.workdir, job.out_dir, job.seed, attempt=job.attempt + 1
                )
                self.engine.start(retry)
                flight.running[job.k] = retry
                return
            run = TrainingRun(
                status=CRASH,
                value=None,
                reason=f"its worker died {plural(job.attempt, 'time')}: {err}",
                train_seconds=0.0,
                wall_seconds=round(time.time() - job.started, 3),
                peak_memory_mb=None,
                log_path=None,
                seed=job.seed,
            )
        flight.done[job.k] = self.trials.record(job.n, job.k, job.workdir, run)
        if job.k:
            shutil.rmtree(job.workdir, ignore_errors=True)
        self._complete(flight, history)

    def _complete(self, flight: Flight, history: list[Iteration]) -> None:
        """Decide and record the iteration once all the runs it needs are in."""
        best = self._best(flight, history)
        if flight.running or len(flight.done) < self.trials.wanted(flight.runs(), best):
            return
        del self.flights[flight.it.iteration]
        self.trials.conclude(flight.it, flight.runs(), best, history)
        if flight.it.status != CRASH and flight.it.iteration == 0:
            flight.it.status = BASELINE
        self.record(flight.it, flight.notes, history)

    def record(self, it: Iteration, notes: list[str], history: list[Iteration]) -> None:
        if notes:
            it.reason = "; ".join([it.reason, *notes] if it.reason else notes)
        self.loop.record(it, history)
        running = [
            (job.started, f, job) for f in self.flights.values() for job in f.running.values()
        ]
        if running:  # what goes on meanwhile, for status and the display
            _, flight, job = min(running, key=lambda r: r[0])
            self.loop.phase(
                TRAINING, job.n, description=flight.it.description, run=job.k + 1,
                budget_secs=self.cfg.budget_secs, grace_secs=self.cfg.grace_secs,
                started_at=job.started,
            )  # fmt: skip
        if stop := self.loop.streak_stop(history):
            self._end(STOPPED, stop)
