"""Doctor's and every run's sandbox check, proven from inside: the training interpreter starts in
the real sandbox and imports what the task needs, then tries every way out the sandbox must close
(sandbox_attacks.py); one line per try, and a run refuses to start when any succeeds."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from autoresearch.core.config import Config
from autoresearch.core.log_metrics import self_reported
from autoresearch.store.workspace import copy_for_experiment
from autoresearch.training import sandbox, task
from autoresearch.training.experiment import Trainer, limits_of
from autoresearch.training.limits import Enforcer
from autoresearch.training.probe import run_quietly
from autoresearch.training.train_command import TrainCommand, probe_argv, readonly_paths

PROBE_TIMEOUT_SECS = 180
ATTACKS = Path(__file__).with_name("sandbox_attacks.py")
UNSANDBOXED = (
    'off (sandbox = "none"): train.py runs as you; it can read your files, the validation '
    "labels included, and reach the network"
)
# Places that hold what no sandboxed process may see, wherever autoresearch runs.
PRIVATE_PLACES = ("/root", "/home", "/run", "/var/run", "/var/lib", "/srv", "/mnt", "/media")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str  # what was found, or what is wrong and how to fix it


def check_sandbox(workspace: Path, cfg: Config) -> list[Check]:
    """The sandbox's line, then one line per way out tried from inside it."""
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
        line = f"WARNING: {warning}; {limited}" if warning else f"{UNSANDBOXED}; {limited}"
        return [Check("sandbox", True, line)]
    try:
        task.ensure_data(workspace, cfg)
    except task.TaskError:
        raise ValueError("not checked: it needs the data (see the data check)") from None
    with tempfile.TemporaryDirectory(prefix="autoresearch-doctor-") as tmp:
        trainer = Trainer.prepare(workspace, cfg, Path(tmp))
        try:
            trainer.refuse_exposure()
        except sandbox.SandboxError as err:
            raise ValueError(str(err)) from None
        workdir = copy_for_experiment(workspace, Path(tmp) / "probe")  # as an experiment's
        sibling = copy_for_experiment(workspace, Path(tmp) / "sibling")  # another experiment
        trainer.prepare_home(workdir)
        env = trainer.env(workdir)
        wrap = trainer.wrap(workdir)
        probe_inside(wrap, trainer.command, workdir, env, task.probe_modules(workspace, cfg))
        hidden = [*trainer.secret, workspace, sibling, *map(Path, PRIVATE_PLACES)]
        hidden.append(Path(os.path.expanduser("~")))
        view = trainer.view(workdir)
        tries = attack(wrap, trainer.command, workdir, env, hidden, view)
    return [Check("sandbox", True, f"{summary(trainer, cfg)}; {limited}"), *tries]


def summary(trainer: Trainer, cfg: Config) -> str:
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
    return f"bubblewrap: {sandbox.describe()}; no network; {data}"


def probe_inside(wrap, command: TrainCommand, workdir: Path, env: dict, modules: tuple) -> None:
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
            f"sandbox ({last}); install it where the sandbox shows it (a virtual environment "
            'or the system, not PYTHONPATH or a user site), or set sandbox = "none"'
        )


def attack(
    wrap, command: TrainCommand, workdir: Path, env: dict, hidden: list[Path], view: sandbox.View
) -> list[Check]:
    """Every way out tried from inside (sandbox_attacks.py), one Check each; the orchestrator
    listens on a Unix socket file, an abstract socket and (network off) a loopback port."""
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="autoresearch-")))
        name = f"autoresearch-probe-{uuid.uuid4().hex}"
        listeners = [_listen(socket.AF_UNIX, str(folder / "probe.sock"))]
        listeners.append(_listen(socket.AF_UNIX, "\0" + name))
        port = None
        if not view.network:
            listeners.append(_listen(socket.AF_INET, ("127.0.0.1", 0)))
            port = listeners[-1].getsockname()[1]
        for listener in listeners:
            stack.callback(listener.close)
        given = {"hidden": [os.path.abspath(p) for p in hidden], "bound": sandbox.bound(view),
                 "socket": str(folder / "probe.sock"), "abstract": name, "port": port}  # fmt: skip
        argv = [*probe_argv(command, ATTACKS.read_text()), json.dumps(given)]
        status, out, err = run_quietly(wrap(argv), PROBE_TIMEOUT_SECS, cwd=workdir, env=env)
    tries = []
    for line in out.splitlines():
        try:
            found = json.loads(line)
        except ValueError:
            continue
        detail = found["detail"]
        if found["escaped"]:
            detail += '; the sandbox does not hold here: fix that, or set sandbox = "none" to run unsandboxed knowingly'
        tries.append(Check(f"sandbox: {found['check']}", not found["escaped"], detail))
    if status != 0 or not tries:
        last = (err.strip().splitlines() or ["no output"])[-1]
        tries.append(Check("sandbox: probe", False, f"the probe did not finish ({last})"))
    return tries


def _listen(family: int, address) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind(address)
    sock.listen(4)
    return sock
