"""The one driver of a run's iterations: propose, train, decide, record, until a stop.

Up to `engine.slots` training runs at once on an engine (runner/engines.py) while the agent
proposes in a thread, so that a trainer never waits for the agent; a sequential run is the same
driver over the local engine, asking only when nothing is in flight. A proposal is drawn from the
best at the moment it is asked for, as soon as a worker is free or about to be (one proposal
waits ready at most); the prompt lists what is being trained. Each iteration is decided when its
last run is recorded, against the best at that moment (with the confirmation rule), so the best
never moves backwards, whatever order results arrive in. A proposal whose first run crashed
with an exception goes back to the agent first, in the same thread, its fix then trained first
in line (repairs.py).

Everything that writes the store happens here, in the orchestrator's main thread."""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import Future
from functools import partial
from importlib.util import decode_source
from pathlib import Path

from autoresearch.agents.base import AgentError, AgentExhausted
from autoresearch.core.history import History
from autoresearch.core.records import (
    BASELINE,
    CRASH,
    DISCARD,
    FINISHED,
    INVALID,
    LOST,
    STOPPED,
    TRAINING,
    Iteration,
    TrainingRun,
)
from autoresearch.core.repeats import code_key, repeat_reason
from autoresearch.core.safe_text import DESCRIPTION_CHARS, shorten
from autoresearch.core.stops import baseline_failed
from autoresearch.core.text import plural
from autoresearch.loop.parts import Collaborators, Flight, LoopResult
from autoresearch.loop.repairs import Repairs
from autoresearch.loop.search import choose
from autoresearch.loop.trials import seed_of
from autoresearch.prompt.context import ContextTooSmall
from autoresearch.training.engines import Job, WorkerLost, in_thread

ATTEMPTS = 2  # a run whose worker or node dies is trained once more, then recorded as a crash


class Scheduler:
    def __init__(self, cfg, store, engine, parts: Collaborators, sequential: bool):
        """sequential: ask for a proposal only when nothing is in flight."""
        self.cfg, self.store, self.engine, self.parts = cfg, store, engine, parts
        self.sequential, self.say = sequential, parts.say
        self.flights: dict[int, Flight] = {}
        self.ready: list[tuple[Iteration, list[str], Path]] = []  # proposals waiting for a slot
        self.asking: tuple[object, Future] | None = None  # (Asked, the agent's answer)
        self.stop: LoopResult | None = None  # the result the run ends with, once no more start
        self.busy = 0  # runs training now
        self.hold = False  # after a repeat, no proposal until a result is in (or none trains)
        self.repairs = Repairs(cfg, store, parts.proposer, parts.say)
        self.repairing: list[Flight] = []  # crashed with an exception: their repair is due
        self.fixing: Flight | None = None  # the one whose repair the agent is asked for now
        self.keys: dict[int, str] = {}  # the code keys of proposals in flight (repeats.py)

    def run(self, history: History) -> LoopResult:
        try:
            self._resume(history)
            while True:
                self._launch(history)
                self._ask(history)
                waiting = [job.future for f in self.flights.values() for job in f.running.values()]
                starting = {
                    job.process: job
                    for f in self.flights.values()
                    for job in f.running.values()
                    if job.process is not None and job.pid is None
                }
                if self.asking is not None:
                    waiting.append(self.asking[1])
                if not waiting:
                    break
                done = self.engine.wait([*waiting, *starting])
                for process in done & starting.keys():
                    self._started(starting[process])
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
            return LoopResult(STOPPED, self.parts.stops.baseline(history[0]))
        return self.stop or LoopResult(FINISHED, f"{plural(len(history) - 1, 'iteration')} done")

    # --- what flies ---
    def _resume(self, history: History) -> None:
        """The baseline, if it is not recorded; the proposals a stop left in training."""
        if not history:
            self._fly(self._baseline(), [])
            return
        for n in self.store.pending_numbers():
            if n not in history.by_number:
                it, notes = self.store.pending(n)
                self.say(f"iteration {n}: resuming the proposal recorded before the stop")
                self._fly(it, notes)

    def _baseline(self) -> Iteration:
        self.say("iteration 0: training the baseline")
        return Iteration(
            iteration=0,
            status=BASELINE,
            explanation="Baseline: train.py as given, unchanged.",
            started_at=time.time(),
            strategy=self.parts.strategist.version,
        )

    def _fly(self, it: Iteration, notes: list[str], first: Path | None = None) -> None:
        """it takes off: its first copy of the workspace (made now unless given), its runs
        recorded before a stop."""
        code = it.train_py if it.iteration else None  # the baseline: as given, any bytes
        flight = Flight(it, first or self.parts.workdirs.copy(it.iteration, 0, code), notes)
        if it.iteration == 0:  # as Python reads it (a byte order mark, an encoding line)
            it.train_py = decode_source((flight.first / "train.py").read_bytes())
        for k, run in enumerate(self.store.runs(it.iteration).get(it.iteration, [])):
            flight.done[k] = run
        if flight.done:
            n = it.iteration
            self.say(f"iteration {n}: {len(flight.done)} of its runs recorded before a stop")
        self.flights[it.iteration] = flight

    def _best(self, flight: Flight, history: History) -> Iteration | None:
        """What the flight is measured against: the best now (none for the baseline)."""
        return None if flight.it.iteration == 0 else history.incumbent

    def _launch(self, history: History) -> None:
        """Free slots to the runs the iterations in flight still need (oldest first), then to
        the proposals that wait."""
        for n in sorted(self.flights):
            flight = self.flights[n]
            if not flight.running:  # a resumed one may have all its runs recorded already
                self._complete(flight, history)
                if n not in self.flights:
                    continue
            elif n and not flight.done:  # an experiment's first run trains: none before it ends
                continue
            best = self._best(flight, history)
            wanted = self.parts.trials.wanted(flight.runs(), best)
            while self.busy < self.engine.slots and len(flight.done) + len(flight.running) < wanted:
                self._start(flight, len(flight.done) + len(flight.running), wanted, best)
        while self.ready and self.busy < self.engine.slots and not self._stopped():
            it, notes, workdir = self.ready.pop(0)
            self.say(
                f"iteration {it.iteration}: training: {shorten(it.description, DESCRIPTION_CHARS)}"
            )
            self._fly(it, notes, workdir)
            self._launch(history)

    def _stopped(self) -> bool:
        """A stop that also leaves the ready proposals untrained (a resume trains them)."""
        return self.stop is not None and self.stop.state == STOPPED

    def _start(self, flight: Flight, k: int, wanted: int, best: Iteration | None) -> None:
        it = flight.it
        code = it.train_py if it.iteration else None  # the baseline: as given, any bytes
        workdir = flight.first if k == 0 else self.parts.workdirs.copy(it.iteration, k, code)
        first = flight.done[0].value if 0 in flight.done else None
        self.parts.trials.announce(it, k, wanted, best, first)
        job = Job(
            it.iteration, k, workdir, self.store.run_dir(it.iteration, k), seed_of(it.iteration, k)
        )
        self.engine.start(job)
        self.store.set_training(job.n, job.k, None, None)
        flight.running[k] = job
        self.busy += 1
        self.parts.live.training = sorted(n for n, f in self.flights.items() if f.running)

    def _started(self, job: Job) -> None:
        """Its process runs here: recorded, so that a start after a kill can end it."""
        job.pid, created = job.process.result()
        self.store.set_training(job.n, job.k, job.pid, created)

    # --- the agent ---
    def _ask(self, history: History) -> None:
        """Ask for the next proposal when a worker is free or about to be (sequential: when
        nothing is in flight), while more are due; a repair that is due first."""
        if self.repairing and self.asking is None:
            self._ask_repair(history)
            return
        if self.asking is not None or self.ready or self.stop is not None or not history:
            return  # (no history: the baseline is training, and every proposal starts from it)
        if baseline_failed(history[0]) or len(self.flights) > self.engine.slots:
            return
        if self.sequential and self.flights or self.hold and self.busy:
            return
        experiments = [f for f in self.flights.values() if f.it.iteration != 0]
        # A repeat costs no training, but it is an iteration: an agent that can only repeat
        # itself ends the run on time, not on an endless stream of free proposals.
        if len(history) - 1 + len(experiments) >= self.cfg.loop.iterations:
            return
        reason = self._before_proposal(history)
        if reason:
            self._end(FINISHED, reason)
            return
        n = max(history.last_number, *self.flights, *self.store.pending_numbers(), 0) + 1
        self.store.drop_runs(n)  # none can belong to a proposal that was never stored
        # with their runs so far: search.py starts proposals from a candidate being confirmed
        in_flight = [dataclasses.replace(f.it, runs=f.runs()) for f in experiments]
        proposer = self.parts.proposer
        start = choose(self.cfg, history, in_flight, n)
        try:
            asked = proposer.ask(n, start.parent, history, in_flight, start.other)
        except ContextTooSmall as err:
            self._end(STOPPED, str(err))
            return
        self.asking = (asked, in_thread(proposer.propose, asked.request))

    def _before_proposal(self, history: History) -> str | None:
        """Why no more proposals may be asked for (the cost, a plateau), after the strategist
        when it is due (it costs too); None to go on."""
        stops = self.parts.stops
        if stop := stops.cost(history) or stops.goal(history):
            return stop
        self.parts.promote_due(history)
        self.parts.fixed["program.md"] = self.parts.strategist.revise(history)
        return stops.cost(history) or stops.plateau(history)

    def _ask_repair(self, history: History) -> None:
        flight = self.repairing.pop(0)
        if self.stop is not None:
            flight.notes.append(f"not repaired: the run is stopping ({self.stop.message})")
            self._conclude(flight, history)
            return
        asked = self.parts.proposer.ask_repair(flight.it, flight.done[0], history)
        self.fixing = flight
        self.asking = (asked, in_thread(self.parts.proposer.propose, asked.request))

    def _repaired(self, history: History) -> None:
        """The agent's repair: trained again as the same iteration when it may be (it waits
        first in line for a worker), else the crash is recorded with why not."""
        (asked, future), flight = self.asking, self.fixing
        self.asking = self.fixing = None
        try:
            proposal = future.result()
        except AgentExhausted as err:
            self._end(FINISHED, str(err))
            flight.notes.append(f"not repaired: {err}")
            self._conclude(flight, history)
            return
        except AgentError as err:  # its crash stays pending: a resume asks for the repair again
            self._end(STOPPED, f"agent {self.parts.proposer.agent.name}: {err}")
            return
        parent = history.by_number.get(flight.it.parent) or history.incumbent
        repeat = partial(self._repeat, history=history)
        notes, workdir = self.repairs.take(asked, proposal, parent, flight.notes, repeat)
        if workdir is None:
            flight.notes = notes
            self._conclude(flight, history)
        else:
            self.ready.insert(0, (flight.it, notes, workdir))

    def _answered(self, history: History) -> None:
        if self.fixing is not None:
            self._repaired(history)
            return
        asked, future = self.asking
        self.asking = None
        try:
            proposal = future.result()
        except AgentExhausted as err:
            self._end(FINISHED, str(err))
            return
        except AgentError as err:
            self._end(STOPPED, f"agent {self.parts.proposer.agent.name}: {err}")
            return
        it, notes, workdir = self.parts.proposer.accept(asked, proposal)
        if it.reason is None:
            self.hold = self._repeat(it, history)
        if it.reason is None:
            self.ready.append((it, notes, workdir))
        else:
            self._record(it, notes, history)

    def _repeat(self, it: Iteration, history: History) -> bool:
        """A proposal whose code was trained before, or is training now, is not trained: it is
        recorded with the earlier one's result (repeats.py), costing no training (it still
        counts among [loop] iterations). Whether it was one."""
        earlier = history.trained_as(it.train_py)
        if earlier is not None:
            it.status = DISCARD if earlier.kept else earlier.status
            it.value = earlier.value
            it.reason = repeat_reason(earlier.iteration)
            return True
        key = code_key(it.train_py)
        flying = [f.it for f in self.flights.values() if f.it.iteration != 0]
        flying += [ready[0] for ready in self.ready]
        twin = next((other for other in flying if self._key(other) == key), None)
        if twin is not None:
            it.status, it.reason = INVALID, repeat_reason(twin.iteration, training=True)
        return twin is not None

    def _key(self, it: Iteration) -> str:
        """The code key of a proposal in flight or ready, made once."""
        if it.iteration not in self.keys:
            self.keys[it.iteration] = code_key(it.train_py)
        return self.keys[it.iteration]

    def _end(self, state: str, message: str) -> None:
        if self.stop is None:
            self.stop = LoopResult(state, message)
            if self.flights:
                self.say(f"stopping once the experiments in training are recorded: {message}")

    # --- results ---
    def _finished(self, flight: Flight, job: Job, history: History) -> None:
        del flight.running[job.k]
        self.busy -= 1
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
                self.busy += 1
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
                failure=LOST,
            )
        self.store.trained(job.n, job.k)
        self.hold = False  # news: the agent may be asked again
        flight.done[job.k] = self.parts.trials.record(job.n, job.k, job.workdir, run)
        if job.k:
            self.parts.workdirs.remove(job.n, job.k)
        self.parts.live.training = sorted(n for n, f in self.flights.items() if f.running)
        self._complete(flight, history)

    def _complete(self, flight: Flight, history: History) -> None:
        """Decide and record the iteration once all the runs it needs are in."""
        best = self._best(flight, history)
        if flight.running or len(flight.done) < self.parts.trials.wanted(flight.runs(), best):
            return
        del self.flights[flight.it.iteration]
        self.keys.pop(flight.it.iteration, None)  # a repair changes its code
        if self.repairs.due(flight.it, flight.runs()):
            self.repairing.append(flight)
            return
        self._conclude(flight, history)

    def _conclude(self, flight: Flight, history: History) -> None:
        """Decide it against the best now, and record it."""
        self.parts.trials.conclude(flight.it, flight.runs(), self._best(flight, history), history)
        if flight.it.status != CRASH and flight.it.iteration == 0:
            flight.it.status = BASELINE
        self._record(flight.it, flight.notes, history)

    def _record(self, it: Iteration, notes: list[str], history: History) -> None:
        if notes:  # recorded with the iteration
            it.reason = "; ".join([it.reason, *notes] if it.reason else notes)
        self.parts.recorder.record(it, history)
        running = [
            (job.started, f, job) for f in self.flights.values() for job in f.running.values()
        ]
        if running:  # what goes on meanwhile, for status and the display
            _, flight, job = min(running, key=lambda r: r[0])
            self.parts.live.phase(
                TRAINING, job.n, description=flight.it.description, run=job.k + 1,
                budget_secs=self.cfg.budget_secs, grace_secs=self.cfg.grace_secs,
                started_at=job.started,
            )  # fmt: skip
        if stop := self.parts.stops.streak(history):
            self._end(STOPPED, stop)
