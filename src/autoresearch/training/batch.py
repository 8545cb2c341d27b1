"""A batch of training runs outside the loop's iterations (promotions, ablations): each in its own
copy of the workspace, on the run's engine (as many at once as it has workers) or, without one,
one after another on this machine; scored here, checked like every run (the fixed files)."""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass
from pathlib import Path

from autoresearch.core.records import CRASH, INTEGRITY, LOST, TrainingRun
from autoresearch.training.engines import Job, WorkerLost
from autoresearch.training.experiment import FIXED_FILES, Trainer, read_plain

ATTEMPTS = 2  # a run whose worker dies is trained once more, then recorded as a crash


@dataclass
class Training:
    name: str  # its folder: "promote-0004-x4-best-1"
    train_py: str | None  # None: the workspace's own (the baseline, as given)
    seed: int
    out_dir: Path  # where its log and predictions are kept


def with_budget(trainer: Trainer, secs: float) -> Trainer:
    return dataclasses.replace(trainer, cfg=trainer.cfg.model_copy(update={"budget_secs": secs}))


def _checked(run: TrainingRun, workdir: Path, fixed: dict[str, bytes | None]) -> TrainingRun:
    tampered = [name for name in FIXED_FILES if read_plain(workdir / name) != fixed.get(name)]
    if tampered:
        run.status, run.value, run.metrics, run.failure = CRASH, None, {}, INTEGRITY
        run.reason = f"integrity: the experiment changed {', '.join(tampered)}"
    return run


def _lost(job: Job, err: Exception) -> TrainingRun:
    return TrainingRun(
        status=CRASH, value=None, reason=f"its worker died: {err}", train_seconds=0.0,
        wall_seconds=round(time.time() - job.started, 3), peak_memory_mb=None, log_path=None,
        seed=job.seed, failure=LOST,
    )  # fmt: skip


def train_all(
    trainer: Trainer,
    engine,
    budget_secs: float,
    copy: Callable[[str, str | None], Path],
    fixed: dict[str, bytes | None],
    trainings: list[Training],
) -> list[TrainingRun]:
    """Every training at budget_secs, in order of the list; their runs, in the same order."""
    if engine is None:
        longer = with_budget(trainer, budget_secs)
        runs = []
        for t in trainings:
            workdir = copy(t.name, t.train_py)
            runs.append(_checked(longer.run(workdir, t.out_dir, t.seed), workdir, fixed))
            shutil.rmtree(workdir, ignore_errors=True)
        return runs
    saved, engine.trainer = engine.trainer, with_budget(engine.trainer, budget_secs)
    done: dict[int, TrainingRun] = {}
    running: dict[int, Job] = {}
    waiting = list(enumerate(trainings))
    try:
        while waiting or running:
            while waiting and len(running) < engine.slots:
                k, t = waiting.pop(0)
                job = Job(k, 0, copy(t.name, t.train_py), t.out_dir, t.seed)
                engine.start(job)
                running[k] = job
            finished, _ = wait([j.future for j in running.values()], return_when=FIRST_COMPLETED)
            for k, job in [(k, j) for k, j in running.items() if j.future in finished]:
                del running[k]
                try:
                    run = _checked(engine.collect(job), job.workdir, fixed)
                except WorkerLost as err:
                    if job.attempt < ATTEMPTS:
                        again = dataclasses.replace(job, attempt=job.attempt + 1, future=None)
                        engine.start(again)
                        running[k] = again
                        continue
                    run = _lost(job, err)
                done[k] = run
                shutil.rmtree(job.workdir, ignore_errors=True)
    except BaseException:
        for job in running.values():
            engine.cancel(job)
        raise
    finally:
        engine.trainer = saved
    return [done[k] for k in range(len(trainings))]
