"""Doctor's sandbox check: what train.py is hidden from and blocked from, proven by running the
training interpreter inside the sandbox before any training."""

from __future__ import annotations

import tempfile
from pathlib import Path

from autoresearch import sandbox, task
from autoresearch.config import Config
from autoresearch.experiment import Trainer, limits_of
from autoresearch.limits import Enforcer
from autoresearch.log_metrics import self_reported
from autoresearch.probe import run_quietly
from autoresearch.train_command import TrainCommand, probe_argv, readonly_paths
from autoresearch.workspace import copy_for_experiment

PROBE_TIMEOUT_SECS = 180
UNSANDBOXED = (
    'off (sandbox = "none"): train.py runs as you; it can read your files, the validation '
    "labels included, and reach the network"
)


def check_sandbox(workspace: Path, cfg: Config) -> str:
    try:
        sandboxed, warning = sandbox.resolve(cfg.sandbox)
    except sandbox.SandboxError as err:
        raise ValueError(str(err)) from None
    limits = limits_of(cfg)
    enforcer = Enforcer(limits)
    how = "cgroup" if enforcer.kernel_enforced else "rlimits and a watchdog"
    enforcer.close()
    limited = f"limits: {limits.describe()} ({how})"
    if not sandboxed:
        return f"WARNING: {warning}; {limited}" if warning else f"{UNSANDBOXED}; {limited}"
    try:
        task.ensure_data(workspace, cfg)
    except task.TaskError:
        raise ValueError("not checked: it needs the data (see the data check)") from None
    with tempfile.TemporaryDirectory(prefix="autoresearch-doctor-") as tmp:
        trainer = Trainer.prepare(workspace, cfg, Path(tmp))
        workdir = copy_for_experiment(workspace, Path(tmp) / "probe")  # as an experiment's
        trainer.prepare_home(workdir)
        hidden = hidden_paths(trainer.secret)
        modules = task.probe_modules(workspace, cfg)
        env = trainer.env(workdir)
        probe_inside(trainer.wrap(workdir), trainer.command, workdir, env, modules, hidden)
        shown = [*trainer.command.readonly, *readonly_paths(cfg)]
        if self_reported(cfg):
            data = (
                f"read-only for train.py: {', '.join(str(p) for p in shown if p.exists())}; it "
                "evaluates itself, so its metric is self-reported"
            )
        elif trainer.data is not None:
            data = "train.py sees only the task's training files (no validation labels)"
        else:
            data = (
                "the task names no training_files(), so its data folder is visible to train.py "
                "as it is (labels too, if they are in it)"
            )
    return (
        f"bubblewrap: no network, own PID and IPC namespaces, read-only system, writable "
        f"experiment folder only; hidden: {', '.join(hidden)}; {data}; {limited}"
    )


def hidden_paths(secret: list[Path]) -> list[str]:
    """What the sandbox hides from train.py (and that exists here)."""
    return [str(p) for p in dict.fromkeys([*sandbox.private_roots(), *secret]) if p.exists()]


def probe_inside(
    wrap, command: TrainCommand, workdir: Path, env: dict, modules: tuple, hidden: list[str]
) -> None:
    """The training command's interpreter imports modules inside the sandbox (wrap builds its
    command line), or ValueError saying what to do."""
    names = ", ".join(modules)
    code = f"import sys; {f'import {names}; ' if names else ''}print(sys.version.split()[0])"
    try:
        status, _out, err = run_quietly(
            wrap(probe_argv(command, code)), PROBE_TIMEOUT_SECS, cwd=workdir, env=env
        )
    except OSError as error:
        raise ValueError(f"the sandbox does not start: {error}") from None
    if status != 0:
        last = (err.strip().splitlines() or ["timed out"])[-1]
        raise ValueError(
            f"the training interpreter {command.python} cannot import {names} inside the "
            f"sandbox ({last}); install it outside {', '.join(hidden)}, or set "
            'sandbox = "none"'
        )
