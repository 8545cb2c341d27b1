"""An iteration's training runs: the baseline's `noise_runs`, a candidate's first run and, when
it would be kept, its `confirm_runs` more; each with its own seed and its own copy of the
workspace, each recorded as soon as it is scored, so that a resume repeats none of them. The
driver (scheduler.py) starts them; this says how many, records each and decides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import mean

from autoresearch.core.config import Config
from autoresearch.core.decide import candidate, decide
from autoresearch.core.history import History
from autoresearch.core.noise import scored
from autoresearch.core.records import (
    CONFIRMING,
    CRASH,
    INTEGRITY,
    OK,
    TRAINING,
    Iteration,
    TrainingRun,
)
from autoresearch.store.live import Live
from autoresearch.store.store import Store
from autoresearch.training.experiment import FIXED_FILES, read_plain

NOISE_RUN, CONFIRMATION_RUN = "noise run", "confirmation run"
SEEDS_PER_ITERATION = 1000  # run k of iteration n has seed n * 1000 + k: distinct, reproducible


def seed_of(n: int, k: int) -> int:
    return n * SEEDS_PER_ITERATION + k


@dataclass
class Trials:
    cfg: Config
    store: Store
    fixed: dict[str, bytes | None]  # the run's prepare.py and program.md (None: absent)
    say: Callable[[str], None]
    live: Live  # what the run is doing now

    def wanted(self, runs: list[TrainingRun], incumbent: Iteration | None) -> int:
        """How many runs an iteration needs, given those recorded: the baseline's noise runs;
        one, and the confirmation runs when the first would be kept; none after a failure."""
        cfg = self.cfg
        if any(r.status != OK for r in runs):
            return len(runs)
        if incumbent is None:
            return cfg.loop.noise_runs
        if runs and cfg.loop.confirm_runs and candidate(cfg, runs[0], incumbent):
            return 1 + cfg.loop.confirm_runs
        return 1

    def announce(
        self,
        it: Iteration,
        k: int,
        wanted: int,
        incumbent: Iteration | None,
        first: float | None = None,
    ) -> None:
        """Say and show that run k of it starts (of `wanted`); while a candidate is confirmed,
        with its first run's score."""
        kind = NOISE_RUN if incumbent is None else CONFIRMATION_RUN
        if k:
            self.say(f"iteration {it.iteration}: {kind} {k + 1} of {wanted}")
        cfg = self.cfg
        self.live.phase(
            CONFIRMING if k and incumbent is not None else TRAINING,
            it.iteration,
            description=it.description,
            run=k + 1,
            runs=wanted,
            budget_secs=cfg.budget_secs,
            grace_secs=cfg.grace_secs,
            first=first if k and incumbent is not None else None,
        )

    def record(self, n: int, k: int, workdir: Path, run: TrainingRun) -> TrainingRun:
        """Run k of iteration n, trained in workdir: an experiment that changed the fixed files
        crashed; recorded at once."""
        tampered = [name for name in FIXED_FILES if read_plain(workdir / name) != self.fixed[name]]
        if tampered:
            run.status, run.value, run.metrics, run.failure = CRASH, None, {}, INTEGRITY
            run.reason = f"integrity: the experiment changed {', '.join(tampered)}"
        self.store.record_run(n, k, run)
        return run

    def conclude(
        self,
        it: Iteration,
        runs: list[TrainingRun],
        incumbent: Iteration | None,
        history: History,
    ) -> None:
        """Decide it against the incumbent (the best now) and set its value, status and facts."""
        cfg = self.cfg
        it.runs = runs
        it.status, it.reason = decide(cfg, runs, incumbent, history.noise(it))
        values = scored(runs)
        it.value = mean(values) if values and it.status != CRASH else None
        it.train_seconds = round(sum(r.train_seconds for r in runs), 3)
        memory = [r.peak_memory_mb for r in runs if r.peak_memory_mb is not None]
        it.peak_memory_mb = max(memory) if memory else None
        failed = [r for r in runs if r.status != OK]
        it.log_path = str((failed or runs)[0].log_path) if runs else None
