"""Recording a decided iteration: its code committed to the run's git repository (refs for it
and for the best), its row in the store (files first), results.tsv, what the terminal says."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from autoresearch.core.config import Config
from autoresearch.core.history import History
from autoresearch.core.records import Iteration
from autoresearch.core.safe_text import one_line
from autoresearch.core.text import fmt, plural
from autoresearch.store.gitrepo import ExperimentRepo
from autoresearch.store.layout import RESULTS_NAME
from autoresearch.store.live import Live
from autoresearch.store.results import ResultsFile
from autoresearch.store.store import Store
from autoresearch.store.workdirs import Workdirs, name


class Recorder:
    def __init__(
        self,
        cfg: Config,
        store: Store,
        repo: ExperimentRepo,
        fixed: dict[str, bytes | None],  # the run's prepare.py and program.md, committed along
        workdirs: Workdirs,
        live: Live,
        say: Callable[[str], None],
    ):
        self.cfg, self.store, self.repo, self.fixed = cfg, store, repo, fixed
        self.workdirs, self.live, self.say = workdirs, live, say
        self.results = ResultsFile(store.dir / RESULTS_NAME, cfg)

    def bring_in_step(self, history: History) -> None:
        """At a (re)start: what a kill after an iteration's row left unwritten (the best ref,
        results.tsv)."""
        if history:
            best = history.incumbent
            if best.commit:
                self.repo.set_ref("refs/heads/best", best.commit)
        self.results.write(history)

    def record(self, it: Iteration, history: History) -> None:
        """Files, git, then the row; appended to history and to results.tsv."""
        it.wall_seconds = round(time.time() - it.started_at, 3)
        if it.train_py:
            parent = history.by_number.get(it.parent) if it.parent is not None else None
            files: dict[str, str | bytes] = {k: v for k, v in self.fixed.items() if v is not None}
            files["train.py"] = it.train_py
            message = f"iteration {it.iteration}: {it.status} {fmt(it.value)}\n\n{it.explanation}"
            it.commit = self.repo.commit(files, message, parent.commit if parent else None)
            refs = {f"refs/experiments/{name(it.iteration)}": it.commit}
            if it.kept:
                refs["refs/heads/best"] = it.commit
            self.repo.set_refs(refs)
        self.store.record(it)
        self.live.idle()  # until the next phase begins
        self.workdirs.remove(it.iteration)
        history.append(it)
        self.results.append(it)
        value = f"{self.cfg.metric} {fmt(it.value)}"
        self.say(
            f"iteration {it.iteration}: {it.status} {value}"
            + (f" ({it.reason})" if it.reason else "")
        )
        if it.iteration == 0 and (notice := budget_notice(it.log_path)):
            self.say(f"iteration 0: its log says: {one_line(notice)}")
        noise = history.noise()
        if it.iteration == 0 and noise.sigma is not None:
            self.say(f"noise floor: {self.cfg.metric} varies by {noise.sigma:.4f} between seeds "
                     f"(standard deviation over {plural(noise.runs, 'run')})")  # fmt: skip
        if self.live.display is not None:
            self.live.display.recorded(history)


def budget_notice(log_path: Path | str | None) -> str | None:
    """The `budget: ...` line a train.py prints when its budget does not fit (the template: a
    first epoch longer than the budget), to repeat when the baseline is recorded."""
    try:
        with open(log_path or "", errors="replace") as log:
            return next((line.strip() for line in log if line.startswith("budget: ")), None)
    except OSError:
        return None
