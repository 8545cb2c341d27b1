"""`doctor --ray-address`: what a Ray node needs to train an experiment there, checked on every
live node by a Ray task pinned to it, in Ray's own worker, as the training will run.

The orchestrator ships each experiment's files and the task's training files (never the labels);
the node must have the rest: autoresearch itself (the same version), the training command and the
modules it imports, bubblewrap when the sandbox asks for it, a writable temporary folder with free
space, the `readonly_paths` (and `data_dir` when the task names no training files), and CPUs and
GPUs enough for one experiment's `[resources]`.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import autoresearch
from autoresearch.checks import preflight, sandbox_check
from autoresearch.checks.preflight import Check
from autoresearch.checks.sandbox_check import UNSANDBOXED, probe_inside
from autoresearch.core.config import Config
from autoresearch.store.workspace import copy_for_experiment, read_tree
from autoresearch.training import sandbox, task, train_command
from autoresearch.training.experiment import FIXED_FILES, HOME_NAME, node_folder
from autoresearch.training.local import training_env
from autoresearch.training.ray import cluster

# A node's checks end within their probes' timeouts (the interpreter; bwrap and the interpreter's
# paths; the interpreter inside bwrap), and a minute for Ray to start a worker there.
ANSWER_SECS = (
    preflight.PROBE_TIMEOUT_SECS
    + 2 * sandbox.PROBE_TIMEOUT_SECS
    + sandbox_check.PROBE_TIMEOUT_SECS
    + 60
)
MIN_FREE_BYTES = 500 * 2**20  # an experiment's copy, its log and predictions, the data view
_FAILURES = (ValueError, OSError, task.TaskError, sandbox.SandboxError)


@dataclass
class Shipment:
    """What the orchestrator sends each node for its checks, as a run sends an experiment."""

    workspace: str  # the orchestrator's: a relative `python` or uv's .venv is found there
    files: dict[str, bytes]  # the experiment's copy of the workspace, by relative path
    modules: tuple[str, ...]  # what the training interpreter must import
    data_shipped: bool  # the task names its training files: they are sent with each experiment
    version: str  # the orchestrator's autoresearch: its version and the digest of its files


@dataclass
class NodeReport:
    node: cluster.Node
    checks: list[Check]


def check_nodes(address: str | None, workspace: Path, cfg: Config) -> list[NodeReport]:
    """Every live node's checks (ClusterError when the cluster cannot be reached)."""
    shipment = _shipment(workspace, cfg)
    ray = cluster.ray_module()
    joined = not ray.is_initialized()
    ray = cluster.connect(address)
    try:
        found = cluster.nodes(ray)
        remote = ray.remote(num_cpus=0, max_retries=0)(run_checks)
        refs = [cluster.on_node(remote, node.node_id).remote(shipment, cfg) for node in found]
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=ANSWER_SECS)
        return [
            NodeReport(node, [*_answer(ray, ref), resources_check(node, cfg)])
            for node, ref in zip(found, refs, strict=True)
        ]
    finally:
        if joined:
            ray.shutdown()


def room(address: str, reports: list[NodeReport], cfg: Config) -> Check:
    """The cluster as a whole: how many experiments it trains at once."""
    total = sum(cluster.fits(report.node, cfg.resources) for report in reports)
    asks = _asks(cfg)
    if total == 0:
        return Check(
            "cluster",
            False,
            f"{len(reports)} live node(s) at {address}, none with what {asks}; add such a node "
            "or lower [resources] cpus/gpus",
        )
    return Check(
        "cluster", True, f"{len(reports)} live node(s) at {address}, room for {total} experiment(s)"
    )


def resources_check(node: cluster.Node, cfg: Config) -> Check:
    fits = cluster.fits(node, cfg.resources)
    where = f"{node.cpus:g} CPUs, {node.gpus:g} GPUs"
    if fits == 0:
        return Check("resources", True, f"{where}: no experiment lands here ({_asks(cfg)})")
    return Check("resources", True, f"{where}: room for {fits} experiment(s) at once")


def _asks(cfg: Config) -> str:
    return f"each experiment asks {cfg.resources.cpus:g} CPUs, {cfg.resources.gpus:g} GPUs"


def _shipment(workspace: Path, cfg: Config) -> Shipment:
    modules = task.probe_modules(workspace, cfg)
    with tempfile.TemporaryDirectory(prefix="autoresearch-doctor-") as tmp:
        copy = copy_for_experiment(workspace, Path(tmp) / "ws")
        files = read_tree(copy)  # as an experiment is shipped
    shipped = task.training_files(workspace, cfg) is not None
    return Shipment(str(workspace.absolute()), files, modules, shipped, package_version())


def _answer(ray, ref) -> list[Check]:
    ready, _ = ray.wait([ref], timeout=0)
    if not ready:
        ray.cancel(ref, force=True)
        return [Check("autoresearch", False, f"the node's checks did not end in {ANSWER_SECS} s")]
    try:
        return ray.get(ref)
    except Exception as err:  # noqa: BLE001 - Ray wraps what failed there (an import, a worker)
        lines = [line for line in str(err).strip().splitlines() if line.strip()]
        return [
            Check(
                "autoresearch",
                False,
                f"Ray's worker there cannot run autoresearch ({lines[-1] if lines else err!r}); "
                f"install autoresearch {package_version()} in the Python that runs `ray start` "
                "there",
            )
        ]


def run_checks(shipment: Shipment, cfg: Config) -> list[Check]:
    """On the node: each check's result, in order."""
    checks = [_check("autoresearch", lambda: _package(shipment.version))]
    root = node_folder()
    try:
        root.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="doctor-", dir=root))
    except OSError as err:
        return [*checks, Check("temp", False, f"{root} cannot be created here: {err}")]
    try:
        for rel, data in shipment.files.items():
            (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
            (workdir / rel).write_bytes(data)
        workspace = Path(shipment.workspace)
        checks += [
            _check("temp", lambda: _temp(root)),
            _check(
                "interpreter",
                lambda: preflight.interpreter_line(workspace, cfg, shipment.modules, workdir),
            ),
        ]
        runs = checks[-1].ok
        checks += [
            _check("sandbox", lambda: _sandbox(shipment, cfg, workdir, runs)),
            _check("data", lambda: _data(shipment, cfg)),
        ]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return checks


def _check(name: str, fn) -> Check:
    try:
        return Check(name, True, fn())
    except _FAILURES as err:
        return Check(name, False, str(err))


def package_version() -> str:
    """This autoresearch: its version and a digest of its files (a development checkout keeps
    one version number while its code changes)."""
    root = Path(autoresearch.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(f"{path.relative_to(root).as_posix()}\0".encode() + path.read_bytes())
    return f"{autoresearch.__version__} ({digest.hexdigest()[:12]})"


def _package(version: str) -> str:
    here = package_version()
    python = f"Python {'.'.join(map(str, sys.version_info[:3]))} ({sys.executable})"
    if here != version:
        raise ValueError(
            f"autoresearch {here} here under {python}, {version} in the orchestrator; "
            "install the same autoresearch on every node"
        )
    return f"autoresearch {here} under {python}, as in the orchestrator"


def _temp(root: Path) -> str:
    free = shutil.disk_usage(root).free
    if free < MIN_FREE_BYTES:
        raise ValueError(
            f"{root}: only {free / 2**20:.0f} MiB free, an experiment needs "
            f"{MIN_FREE_BYTES / 2**20:.0f} MiB; free some space or set TMPDIR for `ray start`"
        )
    return f"{root} writable, {free / 2**30:.1f} GiB free"


def _sandbox(shipment: Shipment, cfg: Config, workdir: Path, runs: bool) -> str:
    sandboxed, warning = sandbox.resolve(cfg.sandbox)
    if not sandboxed:
        return f"WARNING: {warning}" if warning else UNSANDBOXED
    if not runs:
        return "bubblewrap works here; the interpreter inside it not checked (see interpreter)"
    command = train_command.resolve(Path(shipment.workspace), cfg)
    readonly = [workdir / name for name in FIXED_FILES if (workdir / name).exists()]
    readonly += [
        *command.readonly,
        *train_command.readonly_paths(cfg),
        *_unshipped_data(shipment, cfg),
    ]
    view = sandbox.training_view(workdir, readonly, [], command.python, None)
    home = workdir / HOME_NAME
    home.mkdir(exist_ok=True)
    train_command.link_into_home(home, train_command.readonly_paths(cfg))
    env = training_env(cfg.budget_secs, workdir, command.env, cfg.env_passthrough)
    wrap = lambda argv: sandbox.command(view, argv, workdir)  # noqa: E731
    probe_inside(wrap, command, workdir, env, shipment.modules)
    imports = f" and imports {', '.join(shipment.modules)}" if shipment.modules else ""
    return f"bubblewrap works here; {command.python} starts inside it{imports}"


def _unshipped_data(shipment: Shipment, cfg: Config) -> list[Path]:
    """The configured data folder, when the node must have it itself."""
    configured = None if shipment.data_shipped else task.data_dir(Path(shipment.workspace), cfg)
    return [Path(configured)] if configured else []


def _data(shipment: Shipment, cfg: Config) -> str:
    needed = [*_unshipped_data(shipment, cfg), *train_command.readonly_paths(cfg)]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        raise ValueError(
            f"{', '.join(missing)} does not exist here; train.py reads it and it is not shipped: "
            "copy it to this node at the same path (or mount it there)"
        )
    sent = "the training files come with each experiment" if shipment.data_shipped else ""
    present = f"{', '.join(map(str, needed))} present" if needed else ""
    if not sent and not needed:
        return "the task names no training files and no data_dir: prepare.py finds its own"
    return "; ".join(part for part in (sent, present) if part)
