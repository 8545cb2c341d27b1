"""Ablation: which kept changes mattered. Each keep's diff is reverted from the run's final best
(a three-way merge with real git: the best, the keep, its parent); the best and each variant are
trained with `noise_runs` seeds (the same seeds everywhere) on the run's workers, and a change's
contribution is the best's mean minus the variant's, positive when the change helps, with the
standard error of that difference. Stored in the run's ablations table."""

from __future__ import annotations

import hashlib
import math
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from statistics import mean

from autoresearch.core.config import Config
from autoresearch.core.history import History
from autoresearch.core.noise import estimate, scored
from autoresearch.core.records import BASELINE, KEEP, Ablated, Iteration
from autoresearch.loop.runs import RunRefused
from autoresearch.store.layout import ABLATION, SNAPSHOT, number
from autoresearch.store.runstate import RunLock, kill_leftover, run_tag, tag_processes
from autoresearch.store.store import Store
from autoresearch.store.verdict_store import record_ablation
from autoresearch.store.workspace import copy_for_experiment
from autoresearch.training import task
from autoresearch.training.batch import Training, train_all
from autoresearch.training.experiment import FIXED_FILES, Trainer, experiments_root, read_plain
from autoresearch.training.placement import engine_for

ABLATION_SEED = 800_000  # run k of the best and of every variant: this + k


def revert(best: str, keep: str, parent: str) -> str | None:
    """best without the change from parent to keep (git merge-file); None when it no longer
    applies (later changes touched the same lines)."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, text in (("best", best), ("keep", keep), ("parent", parent)):
            path = Path(tmp) / name
            path.write_text(text)
            paths.append(str(path))
        done = subprocess.run(
            ["git", "merge-file", "-p", "-q", *paths], capture_output=True, text=True
        )
    return done.stdout if done.returncode == 0 else None


def chain(history: list[Iteration], best: Iteration) -> list[int]:
    """The iterations the best descends from (itself included), by their parents."""
    by_number = {it.iteration: it for it in history}
    found, at = [], best
    while at is not None and at.iteration not in found:
        found.append(at.iteration)
        at = by_number.get(at.parent) if at.parent is not None else None
    return found


def variants(history: list[Iteration], best: Iteration) -> list[tuple[Iteration, str | None, str]]:
    """(keep, the best without it or None, why not) for each keep, in order."""
    by_number = {it.iteration: it for it in history}
    ancestors = chain(history, best)
    found = []
    for it in history:
        if it.status != KEEP:
            continue
        parent = by_number.get(it.parent) if it.parent is not None else None
        if it.iteration not in ancestors or parent is None:
            found.append((it, None, "not part of the best: another keep replaced it"))
            continue
        code = revert(best.train_py, it.train_py, parent.train_py)
        why = "" if code is not None else "no longer applies: later keeps changed the same lines"
        found.append((it, code, why))
    return found


def contribution(cfg: Config, best_runs, runs) -> tuple[float | None, float | None]:
    """(the best's mean minus these runs', positive when better; its standard error)."""
    a, b = scored(best_runs), scored(runs)
    if not a or not b:
        return None, None
    sign = 1 if cfg.direction == "maximize" else -1
    noise = estimate([Iteration(0, BASELINE, runs=best_runs), Iteration(1, KEEP, runs=runs)])
    spread = None if noise.sigma is None else noise.sigma * math.sqrt(1 / len(a) + 1 / len(b))
    return sign * (mean(a) - mean(b)), spread


def ablate(workspace: Path, store: Store, say: Callable[[str], None]) -> list[Ablated]:
    """Ablate the run's best (store opened for writing); recorded, and returned in keep order."""
    cfg = store.config()
    history = store.iterations()
    best = History(history, cfg.better).incumbent
    if best is None or best.status != KEEP:
        raise RunRefused(f"run {store.run_id} has no kept change to ablate")
    digest = hashlib.sha256(read_plain(workspace / "prepare.py") or b"").hexdigest()
    if store.get("prepare_sha256", digest) != digest:
        raise RunRefused(f"prepare.py changed since run {store.run_id} started; restore it")
    found = variants(history, best)
    n, budget = cfg.loop.noise_runs, cfg.budget_secs
    trainings = [Training(f"ablate-best-{k}", best.train_py, ABLATION_SEED + k,
                          store.dir / ABLATION / "best" / str(k)) for k in range(n)]  # fmt: skip
    for it, code, _ in found:
        if code is not None:
            trainings += [Training(f"ablate-{number(it.iteration)}-{k}", code, ABLATION_SEED + k,
                                   store.dir / ABLATION / number(it.iteration) / str(k))
                          for k in range(n)]  # fmt: skip
    say(
        f"ablation of iteration {best.iteration}: {len(found)} kept changes, "
        f"{len(trainings)} trainings of {budget:g}s"
    )
    runs = _train(workspace, store, cfg, trainings)
    best_runs, at = runs[:n], n
    best_values = [r.value for r in best_runs]
    changes = []
    for it, code, why in found:
        mine = []
        if code is not None:
            mine, at = runs[at : at + n], at + n
        gain, spread = contribution(cfg, best_runs, mine) if mine else (None, None)
        failed = next((r.reason for r in mine if r.value is None), None)
        changes.append(Ablated(
            best.iteration, it.iteration, it.description, code is not None,
            [r.value for r in mine], best_values, gain, spread,
            why or (f"a run failed: {failed}" if failed else None), budget,
        ))  # fmt: skip
    record_ablation(store, changes)
    return changes


def _train(workspace: Path, store: Store, cfg: Config, trainings: list[Training]):
    """The trainings on the run's workers (its engine), in a copy of its workspace."""
    source = store.dir / SNAPSHOT
    source = source if source.is_dir() else workspace
    fixed = {name: read_plain(source / name) for name in FIXED_FILES}
    root = experiments_root(store.dir)
    with RunLock(store), tag_processes(store.dir):
        kill_leftover(store)
        task.ensure_data(workspace, cfg)
        trainer = Trainer.prepare(workspace, cfg, root)
        engine = engine_for(trainer, cfg, run_tag(store.dir)) if cfg.run.parallel else None
        try:
            return train_all(
                trainer, engine, cfg.budget_secs,
                lambda name, code: copy_for_experiment(source, root / name, code),
                fixed, trainings,
            )  # fmt: skip
        finally:
            if engine is not None:
                engine.close()
            kill_leftover(store)
            shutil.rmtree(root, ignore_errors=True)
