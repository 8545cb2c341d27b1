"""The `autoresearch` command line."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from autoresearch import config as config_mod
from autoresearch import preflight, workspace
from autoresearch.experiment import run_experiment

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False
)
# No console markup: agent, server and train.py text is printed as it is.
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)
out = Console(highlight=False, soft_wrap=True, markup=False)

Workspace = Annotated[Path, typer.Argument(help="The research workspace folder.")]
Budget = Annotated[float | None, typer.Option("--budget", help="Training budget in seconds.")]
Grace = Annotated[
    float | None, typer.Option("--grace", help="Seconds after the budget before SIGKILL.")
]
Python = Annotated[str | None, typer.Option("--python", help="The training interpreter.")]
DataDir = Annotated[str | None, typer.Option("--data-dir", help="Folder with the dataset files.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
AgentName = Annotated[
    str | None,
    typer.Option("--agent", help="auto, claude, codex, command, anthropic, openai, replay or hpo."),
]
Model = Annotated[str | None, typer.Option(help="The agent's model.")]


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(Text.assemble(("error: ", "red"), message))
    return typer.Exit(code)


def paths_from_cwd(overrides: dict) -> dict:
    """Paths given as flags are relative to the current directory, as a user expects (paths in
    autoresearch.toml stay relative to the workspace); --python without a "/" names a program."""
    fixed = dict(overrides)
    for key in ("python", "data_dir", "agent.replay_dir"):
        value = fixed.get(key)
        if value and (key != "python" or "/" in value):
            fixed[key] = str(Path(value).expanduser().absolute())
    return fixed


def load_config(path: Path, **overrides) -> config_mod.Config:
    try:
        return config_mod.load(path, paths_from_cwd(overrides))
    except config_mod.ConfigError as e:
        raise fail(str(e), 2) from None


@app.command()
def init(
    directory: Workspace,
    task: Annotated[str, typer.Option(help="The task template.")] = "fashion-mnist",
) -> None:
    """Create a workspace: prepare.py, train.py, program.md, autoresearch.toml."""
    try:
        files = workspace.init(directory, task, sys.executable)
    except workspace.WorkspaceError as e:
        raise fail(str(e)) from None
    out.print(f"created {', '.join(f.name for f in files)} in {directory}")
    out.print(f"next: autoresearch doctor {directory}")


@app.command()
def doctor(
    directory: Workspace,
    python: Python = None,
    data_dir: DataDir = None,
    agent: AgentName = None,
    model: Model = None,
) -> None:
    """Preflight: one line per check, the agent's included; exit 1 on a failure."""
    cfg = load_config(
        directory, python=python, data_dir=data_dir, **{"agent.name": agent, "agent.model": model}
    )
    failed = False
    extra = [("agent", preflight.check_agent)]
    for check in preflight.run_checks(directory, cfg, extra):
        mark = ("ok  ", "green") if check.ok else ("FAIL", "red")
        out.print(Text.assemble(mark, f" {check.name}: {check.detail}"))
        failed |= not check.ok
    if failed:
        raise typer.Exit(1)


@app.command()
def baseline(
    directory: Workspace,
    budget: Budget = None,
    grace: Grace = None,
    python: Python = None,
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """Train train.py once under the budget and print the trusted score."""
    cfg = load_config(
        directory, budget_secs=budget, grace_secs=grace, python=python, data_dir=data_dir
    )
    problem = preflight.first_failure(directory, cfg)
    if problem:
        raise fail(f"{problem.name}: {problem.detail}")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    workdir = workspace.copy_for_experiment(
        directory, directory / workspace.STATE_DIR / "baselines" / stamp
    )
    if not as_json:
        err.print(f"training {directory / 'train.py'} for up to {cfg.budget_secs:g}s ...")
    outcome = run_experiment(directory, cfg, workdir)
    if as_json:
        print(
            json.dumps(
                {
                    "metric": cfg.metric,
                    "value": outcome.value,
                    "status": outcome.status,
                    "reason": outcome.reason,
                    "train_seconds": outcome.train_seconds,
                    "wall_seconds": outcome.wall_seconds,
                    "peak_memory_mb": outcome.peak_memory_mb,
                    "log": str(outcome.log_path),
                }
            )
        )
    elif outcome.value is not None:
        out.print(
            f"{cfg.metric} = {outcome.value:.4f}  (trained {outcome.train_seconds:.1f}s, "
            f"peak {outcome.peak_memory_mb:.0f} MB, log {outcome.log_path})"
        )
    else:
        out.print(f"{outcome.status}: {outcome.reason}  (log {outcome.log_path})")
    if outcome.status != "ok":
        raise typer.Exit(1)


@app.command()
def run(
    directory: Workspace,
    agent: AgentName = None,
    iterations: Annotated[int | None, typer.Option(help="Iterations after the baseline.")] = None,
    budget: Budget = None,
    grace: Grace = None,
    python: Python = None,
    data_dir: DataDir = None,
    model: Model = None,
    max_cost: Annotated[
        float | None, typer.Option("--max-cost", help="Stop at this many $.")
    ] = None,
    context: Annotated[str | None, typer.Option(help="Prompt history: full or truncated.")] = None,
    replay_dir: Annotated[str | None, typer.Option(help="The replay agent's folder.")] = None,
    new: Annotated[bool, typer.Option("--new", help="Start a new run, not resume.")] = False,
) -> None:
    """Run the research loop; run it again to resume an unfinished run."""
    from autoresearch.agents.base import AgentError
    from autoresearch.agents.factory import build, check_cost_limit
    from autoresearch.loop import Loop
    from autoresearch.runs import start_or_resume
    from autoresearch.runstate import RunBusy

    cfg = load_config(
        directory,
        budget_secs=budget,
        grace_secs=grace,
        python=python,
        data_dir=data_dir,
        **{
            "agent.name": agent,
            "agent.model": model,
            "agent.replay_dir": replay_dir,
            "loop.iterations": iterations,
            "loop.max_cost_usd": max_cost,
            "loop.context": context,
        },
    )
    problem = preflight.first_failure(directory, cfg)
    if problem:
        raise fail(f"{problem.name}: {problem.detail}")
    try:
        chosen, notice = build(cfg.agent, directory)
        check_cost_limit(chosen, cfg.loop.max_cost_usd)
        store, cfg, opening = start_or_resume(directory, cfg, new)
    except (AgentError, config_mod.ConfigError) as e:
        raise fail(str(e)) from None
    if notice:
        err.print(notice)
    err.print(opening)
    try:
        result = Loop(directory, cfg, store, chosen, say=lambda line: err.print(line)).run()
    except RunBusy as e:
        raise fail(str(e)) from None
    from autoresearch.report import write_report

    err.print(f"run {store.run_id} {result.state}: {result.message}")
    err.print(f"report: {write_report(store)}")
    err.print(f"see: autoresearch status {directory}")
    if result.state != "finished":
        raise typer.Exit(130 if "Ctrl-C" in result.message else 1)


@app.command()
def status(
    directory: Workspace,
    run_id: Annotated[
        str | None, typer.Option("--run", help="A run id; default the latest.")
    ] = None,
    as_json: Json = False,
) -> None:
    """The iterations of a run, the best, and the cost."""
    from autoresearch.runs import open_run, snapshot
    from autoresearch.status_table import render

    try:
        store = open_run(directory, run_id)
    except config_mod.ConfigError as e:
        raise fail(str(e)) from None
    snap = snapshot(store)
    if as_json:
        print(json.dumps(snap, indent=2))
    else:
        render(snap, out)


@app.command()
def report(
    directory: Workspace,
    run_id: Annotated[
        str | None, typer.Option("--run", help="A run id; default the latest.")
    ] = None,
) -> None:
    """Write report.md and progress.png for a run (done at the end of each `run` too)."""
    from autoresearch.report import write_report
    from autoresearch.runs import open_run

    try:
        store = open_run(directory, run_id)
    except config_mod.ConfigError as e:
        raise fail(str(e)) from None
    out.print(str(write_report(store)))


def main() -> None:
    """The console script: known failures end in one line, never a traceback."""
    from autoresearch.agents.base import AgentError
    from autoresearch.gitrepo import GitError
    from autoresearch.runstate import RunBusy
    from autoresearch.store import StoreError
    from autoresearch.task import TaskError

    known = (AgentError, GitError, RunBusy, StoreError, TaskError, workspace.WorkspaceError)
    try:
        app()
    except known as e:
        err.print(Text.assemble(("error: ", "red"), str(e)))
        sys.exit(1)
