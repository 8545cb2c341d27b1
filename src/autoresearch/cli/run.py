"""`autoresearch run`: start or resume a run, check before training, say how it ended."""

from __future__ import annotations

import shlex
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from autoresearch.checks import preflight
from autoresearch.cli.common import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_STOPPED,
    Workspace,
    err,
    fail,
    flag,
    signal_exit,
)
from autoresearch.cli.flags import config_flags, listed, paths_from_cwd
from autoresearch.core import config as config_mod
from autoresearch.core.records import FINISHED, INTERRUPTED
from autoresearch.core.safe_text import one_line
from autoresearch.loop import strategist
from autoresearch.store.layout import ORCHESTRATOR_LOG

if TYPE_CHECKING:
    from autoresearch.store.runstate import WorkspaceLock


class Say:
    """Progress lines: to stderr, and with the time into the run folder's orchestrator.log (lines
    said before the run folder exists are written once it does)."""

    def __init__(self) -> None:
        self.file: TextIO | None = None
        self.pending: list[str] = []
        self.lock = threading.RLock()  # the loop and the display's heartbeat both say things

    def open(self, folder: Path) -> None:
        self.file = open(folder / ORCHESTRATOR_LOG, "a", encoding="utf-8", errors="replace")
        for line in self.pending:
            self._keep(line)
        self.pending.clear()

    def __call__(self, line: str) -> None:
        line = one_line(line)  # agent and train.py text: no control sequences reach a terminal
        with self.lock:
            try:
                err.print(line)
            except OSError:
                pass  # the terminal is gone (SIGHUP): the log still gets it
            self.keep(line)

    def keep(self, line: str) -> None:
        """Into the log only (what another part prints)."""
        with self.lock:
            if self.file is None:
                self.pending.append(line)
            else:
                self._keep(line)

    def _keep(self, line: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self.file.write("".join(f"{stamp} {part}\n" for part in line.splitlines() or [""]))
        self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


@config_flags()
def run(
    directory: Workspace = Path("."),
    flags: dict[str, Any] | None = None,
    new: Annotated[bool, flag("--new", help="Start a new run, not resume.")] = False,
    name: Annotated[
        str | None,
        typer.Option("--name", help="A name for the run, shown wherever it is listed."),
    ] = None,
) -> None:
    """Run the research loop; run it again to resume it.

    A flag left out takes the workspace's autoresearch.toml, then the default shown; a resumed
    run keeps the settings it started with ({mutable} may change)."""
    from autoresearch.store.runstate import describe, signal_of, stop_on_signals

    say = Say()
    try:
        with stop_on_signals():
            code = _run(directory, paths_from_cwd(flags or {}), new, name, say)
    except KeyboardInterrupt as interrupt:  # before the loop started, or during the report
        signum = signal_of(interrupt)
        say(f"interrupted by {describe(signum)}")
        code = signal_exit(signum)
    except typer.Exit:
        raise
    except Exception as error:  # main() prints it as one line; the log keeps it too
        say.keep(f"error: {error}")
        raise
    finally:
        say.close()
    if code:
        raise typer.Exit(code)


# The flags a resume may change, named from the settings that say so.
if run.__doc__:  # (none under python -OO)
    run.__doc__ = run.__doc__.replace("{mutable}", listed(config_mod.MUTABLE))


def _run(directory: Path, flags: dict, new: bool, name: str | None, say: Say) -> int:
    from autoresearch.loop.runs import check_name
    from autoresearch.store.runstate import RunBusy, WorkspaceLock

    try:
        file_cfg = config_mod.read(directory)
        config_mod.with_flags(file_cfg, flags)  # a bad flag is named before anything else
        name = check_name(name)
        lock = WorkspaceLock(directory).take()  # from before the run is chosen to the end
    except (config_mod.ConfigError, RunBusy) as e:
        raise fail(str(e), EXIT_REFUSED) from None
    try:
        return _start(directory, file_cfg, flags, new, name, say, lock)
    finally:
        lock.release()


def _start(
    directory: Path,
    file_cfg: config_mod.Config,
    flags: dict,
    new: bool,
    name: str | None,
    say: Say,
    lock: WorkspaceLock,
) -> int:
    """The run, with the workspace's lock held."""
    from autoresearch.agents.base import AgentError
    from autoresearch.agents.factory import build, check_cost_limit
    from autoresearch.core.stops import baseline_failed
    from autoresearch.loop.estimate import estimate_line
    from autoresearch.loop.loop import Loop
    from autoresearch.loop.runs import RunRefused, command, create, describe_settings, plan, titled
    from autoresearch.store.runstate import RunBusy, kill_leftovers
    from autoresearch.training import sandbox
    from autoresearch.views.display import for_console
    from autoresearch.views.export import compared, hint
    from autoresearch.views.report import write_report

    shown = str(directory)
    try:
        for pid in kill_leftovers(directory):
            say(f"killed process {pid}, left running by an orchestrator that died")
        chosen = plan(directory, file_cfg, flags, new, shown)
    except (config_mod.ConfigError, RunRefused, RunBusy) as e:
        raise fail(str(e), EXIT_REFUSED) from None
    cfg = chosen.cfg
    try:  # a cost limit that cannot be enforced is refused before anything is asked or run
        agent, _ = build(cfg.agent, directory)
        check_cost_limit(agent, cfg.loop.max_cost_usd)
        thinker = strategist.build(cfg, directory, agent)
        if thinker is not None and thinker is not agent:
            check_cost_limit(thinker, cfg.loop.max_cost_usd)
    except AgentError as e:
        raise fail(str(e), EXIT_REFUSED) from None
    checks = preflight.agent_checks(cfg)
    problem = preflight.first_failure(directory, cfg, checks)
    if problem:
        raise fail(f"{problem.name}: {problem.detail}", EXIT_REFUSED)
    if not cfg.agent.model and getattr(agent, "model", None):
        cfg.agent.model = agent.model  # the agent's default model, frozen with the run
    if thinker is not None and not cfg.strategist.model and getattr(thinker, "model", None):
        cfg.strategist.model = thinker.model  # likewise the strategist's
    if chosen.store is not None:  # what a resume changed (--iterations, ...) holds from now on
        chosen.store.set(config=cfg.model_dump())
        if name and name != chosen.store.get("name"):
            chosen.lines.append(f"name: {chosen.store.get('name') or '(none)'} -> {name}")
            chosen.store.set(name=name)
    store = chosen.store or create(directory, cfg, file_cfg, name)
    lock.name(store.run_id)
    say.open(store.dir)
    for line in chosen.lines:
        say(line)
    if chosen.store is None:
        say(f"run {titled(store.run_id, name)}: new")
    say(
        f"settings: {describe_settings(cfg)}; strategist {strategist.describe(cfg)}; "
        f"{sandbox.in_force(cfg.sandbox)}"
    )
    say(estimate_line(cfg, max(0, store.recorded() - 1)))
    try:
        with for_console(err, store, cfg, store.iterations(), say) as display:
            loop = Loop(directory, cfg, store, agent, say, display=display, strategist=thinker)
            result = loop.run()
    except (RunBusy, RunRefused) as e:
        say.keep(f"error: {e}")
        raise fail(str(e), EXIT_REFUSED) from None
    say(f"run {titled(store.run_id, store.get('name'))} {result.state}: {result.message}")
    say(compared(store))
    report, plot_failed = write_report(store)
    if plot_failed:
        say(plot_failed)
    say(f"report: {report}")
    history = store.iterations()
    if baseline_failed(history[0]) if history else True:
        say(f"start again: {command(shown, {}, new=True)}")
    else:
        say(hint(shown))
        if result.state != FINISHED:
            say(f"resume: {command(shown, {})}")
    say(f"see: {shlex.join(['autoresearch', 'status', shown])}")
    if result.state == FINISHED:
        return EXIT_OK
    if result.state == INTERRUPTED and result.signum:
        return signal_exit(result.signum)
    return EXIT_STOPPED
