"""Every name in a run's folder, in one place:

WORKSPACE/.autoresearch/runs/            runs_dir: one folder per run
  RUN/run.db                             the store (SQLite)
  RUN/workspace/                         the run's own copy of the workspace, taken at its start
  RUN/iterations/NNNN/                   an iteration: its first run's train.log, predictions
  RUN/iterations/NNNN/runs/K/            run K of the iteration (its repeats)
  RUN/iterations/NNNN/attempts/A/        its attempt A that crashed, and repair A that followed
  RUN/promotions/NNNN-xF/, RUN/ablation/NNNN/K/   the batches of promotions and ablations
  RUN/results.tsv, report.md, progress.png, orchestrator.log
"""

from __future__ import annotations

from pathlib import Path

from autoresearch.store.workspace import STATE_DIR

RUNS = "runs"  # WORKSPACE/.autoresearch/runs/: a folder per run
DB_NAME = "run.db"
SNAPSHOT = "workspace"  # the run's own copy of the workspace, taken when it starts
ITERATIONS = "iterations"
ITERATION_RUNS = "runs"  # iterations/NNNN/runs/K/: an iteration's runs after its first
ATTEMPTS = "attempts"  # iterations/NNNN/attempts/A/: a crashed attempt and its repair's call
REPAIR_PROMPT, REPAIR_OUTPUT = "repair_prompt.md", "repair_output.txt"  # in an attempt's folder
LOG_NAME = "train.log"  # a training run's log
PREDICTIONS_NAME = "predictions.npy"  # what a training run predicted, scored here
RESULTS_NAME = "results.tsv"
REPORT_NAME = "report.md"
PLOT_NAME = "progress.png"
ORCHESTRATOR_LOG = "orchestrator.log"  # what `autoresearch run` printed
PROMOTIONS = "promotions"  # a folder per promotion, a folder per run
ABLATION = "ablation"  # a folder per variant, a folder per run


def number(n: int) -> str:
    """An iteration's number as its folders are named: 0007."""
    return f"{n:04d}"


def runs_dir(workspace: Path) -> Path:
    return workspace / STATE_DIR / RUNS


def is_run(folder: Path) -> bool:
    """Whether folder holds a run (its store)."""
    return (folder / DB_NAME).is_file()


def iteration_dir(run: Path, n: int) -> Path:
    return run / ITERATIONS / number(n)


def run_dir(run: Path, n: int, k: int) -> Path:
    """Where run k of iteration n keeps its log and predictions (the first: the iteration's)."""
    folder = iteration_dir(run, n)
    return folder if k == 0 else folder / ITERATION_RUNS / str(k)


def attempt_dir(run: Path, n: int, attempt: int) -> Path:
    """Where iteration n's attempt that crashed before repair `attempt` keeps its train.py and
    log, with that repair's prompt and answer (the first attempt is 1)."""
    return iteration_dir(run, n) / ATTEMPTS / str(attempt)
