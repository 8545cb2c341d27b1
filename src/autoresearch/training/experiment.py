"""One experiment: train a workspace copy under the budget (sandboxed), then score it here."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from autoresearch.core.config import Config
from autoresearch.core.log_metrics import (
    peak_memory_mb,
    read_metrics,
    score_from_log,
    self_reported,
)
from autoresearch.core.records import (
    CRASH,
    EXCEPTION,
    FULL_DISK,
    LIMIT,
    OK,
    SIGNAL,
    TIMEOUT,
    UNSCORED,
    TrainingRun,
)
from autoresearch.store.layout import LOG_NAME, PREDICTIONS_NAME
from autoresearch.store.runstate import RUN_ENV
from autoresearch.training import sandbox, task, train_command
from autoresearch.training.limits import Limits, default_memory_mb
from autoresearch.training.local import HOME_NAME, THREAD_ENV, RunResult, run_training, training_env
from autoresearch.training.outputs import OutputError, collect_predictions
from autoresearch.training.train_command import TrainCommand

FIXED_FILES = ("prepare.py", "program.md")
DATA_VIEW = "data"  # the folder, beside a run's experiments, that train.py reads its data from


def node_folder() -> Path:
    """This machine's folder for experiments: the orchestrator's copies, and what a node is
    shipped (an experiment's files, the data)."""
    return Path(tempfile.gettempdir()) / f"autoresearch-{os.getuid()}"


def _exit_reason(code: int, tail: str) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        head = f"killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
    else:
        head = f"exit code {code}"
    return f"{head}: {tail}" if tail else head


def experiments_root(key: Path) -> Path:
    """Where the experiment directories of one run (named by its store folder) live: outside
    the workspace and the store, so nothing train.py reaches by walking up is a record."""
    digest = hashlib.sha256(str(key.absolute()).encode()).hexdigest()[:12]
    return node_folder() / f"{key.name}-{digest}"


def limits_of(cfg: Config) -> Limits:
    memory = default_memory_mb() if cfg.max_memory_mb is None else cfg.max_memory_mb
    return Limits(
        memory_mb=memory or None,
        processes=cfg.max_processes or None,
        disk_mb=cfg.resources.disk_mb or None,
    )


def _link_or_copy(src: Path, dest: Path) -> None:
    if dest.is_file() and dest.stat().st_size == src.stat().st_size:
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.unlink(missing_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def secret_paths(workspace: Path, cfg: Config) -> list[Path]:
    """What neither training nor a CLI agent may read: the run stores, the labels, the data."""
    return [workspace / ".autoresearch", *task.private_paths(workspace, cfg)]


@dataclass
class Trainer:
    """How every experiment of a run (or one baseline) is trained: fixed before the first."""

    workspace: Path
    cfg: Config
    root: Path  # experiments_root()
    sandboxed: bool = False
    warning: str | None = None  # say it on every run: training goes unsandboxed
    command: TrainCommand | None = None
    secret: list[Path] = field(default_factory=list)
    data: Path | None = None  # the data view; None: the task names no training files
    threads: int | None = None  # exported as THREAD_ENV; None: train.py's own default
    tag: str | None = None  # RUN_ENV for train.py where this process lacks it (a Ray node)

    @property
    def python(self) -> str:
        return self.command.python

    @classmethod
    def prepare(cls, workspace: Path, cfg: Config, root: Path) -> Trainer:
        """Resolve the sandbox and build the data view (after task.ensure_data)."""
        sandboxed, warning = sandbox.resolve(cfg.sandbox)
        command = train_command.resolve(workspace, cfg)
        trainer = cls(workspace, cfg, root, sandboxed, warning, command)
        trainer.threads = cfg.resources.threads
        trainer.secret = secret_paths(workspace, cfg)
        files = task.training_files(workspace, cfg)
        if files is not None:
            trainer.data = root / DATA_VIEW
            for rel, src in files.items():
                _link_or_copy(src, trainer.data / rel)
        return trainer

    def env(self, workdir: Path, seed: int = 0) -> dict[str, str]:
        extra = {}
        if self.data is not None:
            extra["AUTORESEARCH_CACHE_DIR"] = str(self.data)
        elif (configured := task.data_dir(self.workspace, self.cfg)) is not None:
            extra["AUTORESEARCH_DATA_DIR"] = configured
        extra.update(self.command.env)
        if self.threads is not None:
            extra.update(dict.fromkeys(THREAD_ENV, str(self.threads)))
        if self.tag is not None:
            extra[RUN_ENV] = self.tag
        if self.sandboxed:  # no network there: Hugging Face libraries read their cache at once
            extra["HF_HUB_OFFLINE"] = "1"
        return training_env(self.cfg.budget_secs, workdir, extra, self.cfg.env_passthrough, seed)

    def prepare_home(self, workdir: Path) -> None:
        """train.py's HOME, with the readonly_paths under the user's home linked into it."""
        home = workdir / HOME_NAME
        home.mkdir(exist_ok=True)
        train_command.link_into_home(home, train_command.readonly_paths(self.cfg))

    def shown(self) -> list[Path]:
        """What training may read besides its folder: the data, and what the command and the
        configuration add."""
        if self.data is not None:
            data = [self.data]
        else:
            data = [Path(p) for p in [task.data_dir(self.workspace, self.cfg)] if p]
        return [*data, *self.command.readonly, *train_command.readonly_paths(self.cfg)]

    def refuse_exposure(self) -> None:
        """SandboxError when the command, readonly_paths or the interpreter would show a secret
        path inside the sandbox (the data folder of a task that names no training files is
        shown on purpose: doctor says so)."""
        extra = [*self.command.readonly, *train_command.readonly_paths(self.cfg)]
        sandbox.refuse_exposure(extra, self.secret, "readonly_paths or command:")
        interpreter = list(sandbox.interpreter_paths(self.python))
        sandbox.refuse_exposure(interpreter, self.secret, f"the interpreter {self.python}:")

    def view(self, workdir: Path) -> sandbox.View:
        readonly = [*(workdir / name for name in FIXED_FILES), *self.shown()]
        tmp_mb = self.cfg.resources.disk_mb or None  # its private /tmp shares the disk quota
        return sandbox.training_view(workdir, readonly, self.secret, self.python, tmp_mb)

    def wrap(self, workdir: Path):
        if not self.sandboxed:
            return None
        view = self.view(workdir)
        sandbox.give_to_sandbox([workdir])
        return lambda argv: sandbox.command(view, argv, workdir)

    def run(self, workdir: Path, out_dir: Path, seed: int = 0, on_start=None) -> TrainingRun:
        """Train workdir/train.py (workdir is a copy of the workspace) with AUTORESEARCH_SEED
        = seed; the log and the checked predictions go to out_dir, which train.py cannot reach;
        score them here."""
        started = time.time()
        workdir, out_dir = workdir.absolute(), out_dir.absolute()
        out_dir.mkdir(parents=True, exist_ok=True)
        result = self.execute(workdir, out_dir / LOG_NAME, seed, on_start)
        return self.conclude(result, workdir, out_dir, seed, started)

    def execute(self, workdir: Path, log_path: Path, seed: int, on_start=None) -> RunResult:
        """Only the training (here, or on a Ray node: runner/node.py): no scoring."""
        self.prepare_home(workdir)
        return run_training(
            self.python,
            workdir,
            self.cfg.budget_secs,
            self.cfg.grace_secs,
            log_path,
            max_log_bytes=self.cfg.max_log_bytes,
            env=self.env(workdir, seed),
            wrap=self.wrap(workdir),
            limits=limits_of(self.cfg),
            on_start=on_start,
            command=self.command.argv,
            die_with_parent=self.tag is not None,  # on a Ray node
            keep=FIXED_FILES,  # for the integrity check; the rest may fill the disk
        )

    def conclude(
        self, result: RunResult, workdir: Path, out_dir: Path, seed: int, started: float
    ) -> TrainingRun:
        """How a training ended, scored here: the predictions in workdir, the log in out_dir."""
        scores, reason, status, failure = None, None, OK, None
        logged = read_metrics(result.log_path, self.cfg.metrics)[0] if self.cfg.metrics else {}
        if result.limit_reason:
            status, reason, failure = CRASH, result.limit_reason, LIMIT
        elif result.log_error:  # a full disk: the log and what train.py saved are incomplete
            status, reason, failure = CRASH, result.log_error, FULL_DISK
        elif result.killed:
            status, reason = TIMEOUT, result.kill_reason
        elif result.exit_code != 0:
            status, reason = CRASH, _exit_reason(result.exit_code, result.error_tail())
            failure = SIGNAL if result.exit_code < 0 else EXCEPTION
        else:
            if self_reported(self.cfg):
                scores, reason = score_from_log(result.log_path, self.cfg)
            else:
                scores, reason = self._score(workdir, out_dir)
            if scores is None:
                status, failure = CRASH, UNSCORED
        others = {k: v for k, v in (scores or logged).items() if k != self.cfg.metric}
        return TrainingRun(
            status=status,
            value=scores[self.cfg.metric] if scores else None,
            reason=reason,
            train_seconds=round(result.train_seconds, 3),
            wall_seconds=round(time.time() - started, 3),
            peak_memory_mb=peak_memory_mb(self.cfg, logged, result.log_path, result.peak_memory_mb),
            log_path=result.log_path,
            seed=seed,
            metrics=others,
            failure=failure,
        )

    def _score(self, workdir: Path, out_dir: Path) -> tuple[dict[str, float] | None, str | None]:
        kept = out_dir / PREDICTIONS_NAME
        kept.unlink(missing_ok=True)
        try:
            collect_predictions(workdir / PREDICTIONS_NAME, kept)
        except OutputError as err:
            return None, f"bad predictions: {err}"
        return task.score(self.workspace, self.cfg, kept)


def read_plain(path: Path) -> bytes | None:
    """A regular file's bytes, opened without following a link; None for anything else (a
    link, a folder, a FIFO, a missing or unreadable file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        return f.read() if stat.S_ISREG(os.fstat(fd).st_mode) else None


def run_experiment(
    workspace: Path, cfg: Config, workdir: Path, out_dir: Path, seed: int = 0
) -> TrainingRun:
    """One experiment outside a run (`baseline`, benchmarks): its own trainer."""
    task.ensure_data(workspace, cfg)
    return Trainer.prepare(workspace, cfg, workdir.parent).run(workdir, out_dir, seed)
