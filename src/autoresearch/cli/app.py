"""The `autoresearch` command line."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from autoresearch import __version__
from autoresearch.checks import preflight
from autoresearch.cli.ablate import ablate
from autoresearch.cli.bundle import bundle
from autoresearch.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    Command,
    Group,
    Json,
    RunId,
    Workspace,
    err,
    existing,
    fail,
    flag,
    out,
    reading,
    signal_exit,
)
from autoresearch.cli.compare import compare
from autoresearch.cli.doctor import doctor
from autoresearch.cli.flags import config_flags, paths_from_cwd
from autoresearch.cli.run import run
from autoresearch.cli.serve import serve
from autoresearch.core import config as config_mod
from autoresearch.core.config import ConfigError
from autoresearch.core.log_metrics import self_reported
from autoresearch.core.records import INTERRUPTED, OK, SELF_REPORTED
from autoresearch.core.safe_text import one_line, strict_json
from autoresearch.store import workspace
from autoresearch.training.experiment import experiments_root, run_experiment

# baseline --json statuses besides the experiment's own (ok, crash, timeout).
REFUSED = "error"  # refused before any training

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help=__doc__,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # paragraphs of help reflow to the terminal's width
    cls=Group,
)


def _version(value: bool) -> None:
    if value:
        out.print(f"autoresearch {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_version,
            is_eager=True,
            metavar="",
            help="Print the version.",
        ),
    ] = False,
) -> None:
    """autoresearch: an AI agent does ML research overnight, in a loop you can trust."""


@app.command()
def init(
    directory: Workspace,
    task: Annotated[str, typer.Option(help="The task template.")] = "fashion-mnist",
    adopt: Annotated[
        bool,
        flag(
            "--adopt",
            help="Use an existing folder (e.g. a karpathy/autoresearch checkout) as it is: "
            "write only its autoresearch.toml.",
        ),
    ] = False,
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="BUNDLE[:ITERATION]: start from a bundle's best (or that) iteration, with its "
            "program.md, prepare.py and settings.",
        ),
    ] = None,
) -> None:
    """Create a workspace from a task template.

    It holds prepare.py, train.py, program.md and autoresearch.toml; with --adopt, only
    autoresearch.toml is written, beside the files you have."""
    from autoresearch.cli.adopt import adopt as adopt_folder
    from autoresearch.cli.origin import start_from
    from autoresearch.views.bundle import BundleError
    from autoresearch.views.export import ExportError

    try:
        if start:
            for line in start_from(directory, start):
                out.print(one_line(line))
        elif adopt:
            path, lines = adopt_folder(directory)
            for line in lines:
                out.print(one_line(line))
            out.print(one_line(f"wrote {path}; nothing else was changed"))
        else:
            files = workspace.init(directory, task, sys.executable)
            out.print(f"created {', '.join(f.name for f in files)} in {directory}")
    except (workspace.WorkspaceError, BundleError, ExportError, ConfigError) as e:
        raise fail(str(e)) from None
    out.print(f"next: autoresearch doctor {directory}")


app.command()(doctor)  # in cli_doctor.py
app.command()(bundle)  # in cli_bundle.py


def _baseline_folder(directory: Path) -> Path:
    """A folder of its own (log, predictions, lock), even for two baselines started in the
    same second; the experiment itself trains outside the workspace."""
    root = directory / workspace.STATE_DIR / "baselines"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=root))


@app.command()
@config_flags("budget_secs", "grace_secs", "python", "data_dir", "sandbox")
def baseline(
    directory: Workspace = Path("."),
    flags: dict[str, Any] | None = None,
    as_json: Json = False,
) -> None:
    """Train train.py once under the budget; print the trusted score.

    Exit 1 if it crashes or times out."""
    from autoresearch.loop.runs import RunRefused
    from autoresearch.store.runstate import (
        describe,
        hold,
        kill_leftovers,
        signal_of,
        stop_on_signals,
        tag_processes,
    )

    report = {"metric": None, "self_reported": None, "value": None, "metrics": {}, "seed": None,
              "status": REFUSED,
              "reason": None, "train_seconds": None, "wall_seconds": None, "peak_memory_mb": None,
              "log": None}  # fmt: skip
    code = 0
    try:
        with stop_on_signals():
            cfg = config_mod.load(directory, paths_from_cwd(flags or {}))
            report["metric"] = cfg.metric
            report["self_reported"] = self_reported(cfg)
            kill_leftovers(directory)
            problem = preflight.first_failure(directory, cfg)
            if problem:
                raise RunRefused(f"{problem.name}: {problem.detail}")
            out_dir = _baseline_folder(directory)
            root = experiments_root(out_dir)
            if not as_json:
                err.print(f"training {directory / 'train.py'} for up to {cfg.budget_secs:g}s ...")
            try:
                with hold(out_dir), tag_processes(out_dir):
                    workdir = workspace.snapshot(directory, root / "work")
                    outcome = run_experiment(directory, cfg, workdir, out_dir)
            finally:
                shutil.rmtree(root, ignore_errors=True)
            report.update(
                value=outcome.value, metrics=outcome.metrics, seed=outcome.seed,
                status=outcome.status, reason=outcome.reason,
                train_seconds=outcome.train_seconds, wall_seconds=outcome.wall_seconds,
                peak_memory_mb=outcome.peak_memory_mb, log=str(outcome.log_path),
            )  # fmt: skip
            code = EXIT_OK if outcome.status == OK else EXIT_FAILED
    except (RunRefused, ConfigError) as e:
        report["reason"], code = str(e), EXIT_REFUSED
    except KeyboardInterrupt as interrupt:
        signum = signal_of(interrupt)
        report.update(status=INTERRUPTED, reason=f"interrupted by {describe(signum)}")
        code = signal_exit(signum)
    if as_json:
        print(strict_json(report))
    elif report["value"] is not None:
        mark = f" ({SELF_REPORTED})" if report["self_reported"] else ""
        peak = report["peak_memory_mb"]
        out.print(
            f"{report['metric']} = {report['value']:.4f}{mark}  (trained "
            f"{report['train_seconds']:.1f}s, peak {'?' if peak is None else f'{peak:.0f}'} MB, "
            f"log {report['log']})"
        )
    elif code == EXIT_REFUSED:
        err.print(Text.assemble(("error: ", "red"), one_line(report["reason"])))
    else:
        log = f"  (log {report['log']})" if report["log"] else ""
        out.print(one_line(f"{report['status']}: {report['reason']}{log}"))
    if code:
        raise typer.Exit(code)


app.command()(run)  # in cli_run.py
app.command()(serve)  # in cli_serve.py
app.command()(ablate)  # in cli_ablate.py
app.command()(compare)  # in cli_compare.py


@app.command()
def status(
    directory: Workspace = Path("."),
    run_id: RunId = None,
    as_json: Json = False,
    wide: Annotated[
        bool, flag("--wide", help="Whole descriptions, wrapped, not cut to one line.")
    ] = False,
) -> None:
    """The iterations of a run, the best, and the cost."""
    from autoresearch.loop.runs import open_run
    from autoresearch.views.export import hint
    from autoresearch.views.snapshot import snapshot
    from autoresearch.views.status_table import render

    shown, directory = directory, reading(directory)
    try:
        store = open_run(existing(directory), run_id)
    except ConfigError as e:
        raise fail(str(e)) from None
    snap = snapshot(store)
    if as_json:
        print(strict_json(snap, indent=2))
    else:
        render(snap, out, wide)
        if snap["best"]["iteration"] is not None:
            out.print(Text(hint(str(shown), run_id)), soft_wrap=False)  # to the width


@app.command()
def report(
    directory: Workspace = Path("."),
    run_id: RunId = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for report.md and progress.png; default the run's."),
    ] = None,
) -> None:
    """Write report.md and progress.png for a run.

    `run` writes them too, at its end."""
    from autoresearch.loop.runs import open_run
    from autoresearch.views.report import write_report

    given, directory = directory, reading(directory)
    try:
        store = open_run(existing(directory), run_id)
    except ConfigError as e:
        raise fail(str(e)) from None
    if out_dir is None and (given != directory or not os.access(store.dir, os.W_OK)):
        raise fail(f"{given if given != directory else store.dir} is read-only; "
                   "pass --out DIR to write the report elsewhere")  # fmt: skip
    path, plot_failed = write_report(store, out_dir)
    if plot_failed:
        err.print(Text(plot_failed))
    out.print(one_line(str(path)))


@app.command()
def export(
    directory: Workspace = Path("."),
    run_id: RunId = None,
    iteration: Annotated[
        int | None, typer.Option("--iteration", help="This iteration, not the best.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write to this file, not stdout.")
    ] = None,
) -> None:
    """Write an iteration's train.py, the best by default.

    To stdout, or to a file with -o."""
    from autoresearch.core.text import fmt
    from autoresearch.loop.runs import open_run
    from autoresearch.views.export import ExportError, pick, write

    try:
        store = open_run(reading(directory), run_id)
        it = pick(store, iteration)
        what = f"iteration {it.iteration} of run {store.run_id} ({it.status}, {fmt(it.value)})"
        if output is None:
            sys.stdout.flush()
            sys.stdout.buffer.write(it.train_py.encode())  # UTF-8 as stored, in any locale
            sys.stdout.flush()
            err.print(one_line(f"train.py of {what}"))
        else:
            err.print(one_line(f"wrote {write(it.train_py, output)}: train.py of {what}"))
    except (ConfigError, ExportError) as e:
        raise fail(str(e)) from None


@app.command()
def strategy(
    directory: Workspace = Path("."),
    run_id: RunId = None,
    export_to: Annotated[
        Path | None,
        typer.Option("--export", help="Write the newest version as a program.md to this file."),
    ] = None,
) -> None:
    """The run's strategy versions, oldest first.

    Rejected strategist replies are listed too."""
    from autoresearch.loop.runs import open_run
    from autoresearch.loop.strategist import program_of
    from autoresearch.views.export import ExportError, write
    from autoresearch.views.snapshot import snapshot
    from autoresearch.views.status_table import strategy_lines

    try:
        store = open_run(reading(directory), run_id)
        snap = snapshot(store)
        versions = [s for s in store.strategies() if s.version is not None]
        if export_to is not None:
            if not versions:
                raise ExportError(f"run {store.run_id} has no strategy versions (strategist "
                                  f"{snap['strategist']['detail']})")  # fmt: skip
            path = export_to / "program.md" if export_to.is_dir() else export_to
            written = write(program_of(store, versions[-1]), path)
            err.print(one_line(f"wrote {written}: program.md with strategy version "
                               f"{versions[-1].version} of run {store.run_id}"))  # fmt: skip
            return
    except (ConfigError, ExportError) as e:
        raise fail(str(e)) from None
    for line in strategy_lines(snap):
        out.print(Text(line))


for _info in app.registered_commands:
    _info.cls = Command  # every command's --help shown as a flag


def main() -> None:
    """The console script: known failures end in one line, never a traceback."""
    from autoresearch.agents.base import AgentError
    from autoresearch.store.gitrepo import GitError
    from autoresearch.store.runstate import RunBusy
    from autoresearch.store.store import StoreError
    from autoresearch.training.sandbox import SandboxError
    from autoresearch.training.task import TaskError
    from autoresearch.views.bundle import BundleError

    known = (
        AgentError, BundleError, GitError, RunBusy, SandboxError, StoreError, TaskError,
        workspace.WorkspaceError,
    )  # fmt: skip
    try:
        app()
    except known as e:
        err.print(Text.assemble(("error: ", "red"), one_line(str(e))))
        sys.exit(EXIT_FAILED)
    except OSError as e:  # a full disk, a read-only folder: the file and the reason
        where = f"{e.filename}: " if e.filename else ""
        err.print(Text.assemble(("error: ", "red"), one_line(f"{where}{e.strerror or e}")))
        sys.exit(EXIT_FAILED)
