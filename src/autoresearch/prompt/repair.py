"""The prompt that asks the agent to repair a proposal whose training crashed with an exception
(loop/scheduler.py): the idea and its change, the train.py that crashed, the end of its log."""

from __future__ import annotations

from autoresearch.core.log_metrics import scoring_sentence
from autoresearch.core.logs import tail_lines
from autoresearch.core.records import Iteration, TrainingRun
from autoresearch.prompt.runfacts import LINE_CHARS, diff_lines
from autoresearch.prompt.templates import template

LOG_LINES = 40  # of the crashed run's log, its last
DIFF_LINES = 120  # of the idea's change to its parent


def render_repair(program: str, it: Iteration, crashed: TrainingRun, cfg) -> str:
    """Repair it.repairs + 1 of it, whose train.py crashed in the run `crashed`."""
    log = [line[:LINE_CHARS] for line in tail_lines(crashed.log_path, LOG_LINES)]
    return template("repair.txt").substitute(
        iteration=it.iteration,
        budget=f"{cfg.budget_secs:g}",
        scoring=scoring_sentence(cfg),
        repair=it.repairs + 1,
        repairs=cfg.loop.repairs,
        program=program.strip(),
        explanation=it.explanation.strip() or "(no explanation)",
        parent=it.parent,
        diff="\n".join(diff_lines(it.diff, DIFF_LINES)),
        train_py=it.train_py.rstrip(),
        log_count=len(log),
        log="\n".join(log) or f"(no log kept; the crash: {crashed.reason})",
    )
