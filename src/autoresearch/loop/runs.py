"""Finding, starting and resuming runs: the run lookup, the resume plan, the command that would
do it, a run's name and settings in words."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autoresearch.agents.factory import choose
from autoresearch.core.config import (
    CONFIG_NAME,
    FLAGGED,
    FLAGS,
    MUTABLE,
    Config,
    ConfigError,
    with_flags,
)
from autoresearch.core.records import FINISHED, RUNNING
from autoresearch.core.safe_text import one_line
from autoresearch.core.stops import baseline_failed, out_of_time
from autoresearch.core.text import fmt, plural
from autoresearch.store.layout import is_run, runs_dir
from autoresearch.store.runstate import RunBusy, state
from autoresearch.store.store import Store, StoreError, list_runs, new_run_id
from autoresearch.store.workspace import origin_of

NAME_CHARS = 60  # a run's name (--name): short enough for a table's column

TOO_SHORT = "the budget is too short for this machine (or it is busy), not train.py at fault"
TRACKING_PREFIX = "tracking."


class RunRefused(Exception):
    """A start that would not do what was asked: one line, with the command that would."""


@dataclass
class Plan:
    """The run a `run` command is about to work on, before anything is written."""

    store: Store | None  # None: a new run, created once the preflight has passed
    cfg: Config  # the settings it runs with
    lines: list[str]  # what to tell the user


def latest(workspace: Path, readonly: bool = False) -> Store | None:
    found = list_runs(workspace)
    return Store(found[-1], readonly) if found else None


def open_run(workspace: Path, run_id: str | None) -> Store:
    """A named run, or the latest one."""
    if run_id:
        path = runs_dir(workspace) / run_id
        if not is_run(path):
            known = ", ".join(p.name for p in list_runs(workspace)) or "none"
            raise ConfigError(f"no run '{run_id}' in {workspace}; runs: {known}")
        return Store(path, readonly=True)
    store = latest(workspace, readonly=True)
    if store is None:
        raise ConfigError(f"{workspace} has no runs yet; start one with `autoresearch run`")
    return store


def show_setting(value: Any) -> str:
    """A setting as a user types it: 300, full, (unset)."""
    if value is None:
        return "(unset)"
    return f"{value:g}" if isinstance(value, float) else str(value)


def command(workspace: str, flags: dict[str, Any], new: bool = False) -> str:
    """The `autoresearch run` command line with these flags."""
    words = ["autoresearch", "run", workspace, *(["--new"] if new else [])]
    for dotted, value in flags.items():
        words += FLAGGED[dotted].flag.typed(value)
    return shlex.join(words)


def _get(cfg: Config, dotted: str) -> Any:
    value: Any = cfg
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    """Nested settings as one dict of dotted keys ("loop.context"); prices stay one value."""
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict) and key != "prices":
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _resolve_auto(cfg: Config) -> tuple[Config, str | None]:
    if cfg.agent.name != "auto":
        return cfg, None
    name, why = choose(cfg.agent)
    cfg = cfg.model_copy(deep=True)
    cfg.agent.name = name
    return cfg, f"agent auto: using {name}, because {why}"


def plan(workspace: Path, file_cfg: Config, flags: dict[str, Any], new: bool, shown: str) -> Plan:
    """A new run (with --new, or when there is none) with the file's settings and the flags on
    top; else the latest run with the settings it was started with, the flags that may change
    applied, and a refusal naming the command that works for a flag that may not."""
    flags = {k: v for k, v in flags.items() if v is not None}
    store = None if new else latest(workspace)
    if store is None:
        cfg, notice = _resolve_auto(with_flags(file_cfg, flags))
        return Plan(None, cfg, [line for line in [notice] if line])
    if state(store) == RUNNING:
        raise RunBusy(f"run {store.run_id} is already running (pid {store.get('pid')})")
    saved = store.config()
    history = store.iterations()
    if history and baseline_failed(history[0]):
        why = out_of_time(history[0], scored_before(workspace, history[0].train_py, store.run_id))
        fix = f"{TOO_SHORT} ({why}): give it a longer --budget" if why else "fix train.py"
        raise RunRefused(
            f"run {store.run_id} stopped because its baseline failed ({history[0].reason}); "
            f"{fix}, then start a new run: {command(shown, flags, new=True)}"
        )
    changes, frozen, given = [], [], []
    for dotted, value in flags.items():
        picked = choose(saved.agent)[0] if dotted == "agent.name" and value == "auto" else None
        before = _get(saved, dotted)
        after = _get(with_flags(saved, {dotted: picked or value}), dotted)
        if before == after:
            continue
        if dotted in MUTABLE:
            changes.append(f"{FLAGS[dotted]} {show_setting(before)} -> {show_setting(after)}")
        else:
            frozen.append(f"{FLAGS[dotted]} {show_setting(before)}")
            given.append(
                f"{FLAGS[dotted]} {show_setting(value)}" + (f" ({picked})" if picked else "")
            )
    if frozen:
        keep = {k: v for k, v in flags.items() if k in MUTABLE}
        raise RunRefused(
            f"run {store.run_id} was started with {', '.join(frozen)}, not {', '.join(given)}; "
            f"to resume it as started: `{command(shown, keep)}`; "
            f"to start a new run with yours: `{command(shown, flags, new=True)}`"
        )
    cfg = with_flags(saved, {k: v for k, v in flags.items() if k in MUTABLE})
    # where results are tracked is not what an experiment is: the file's, also on a resume
    cfg = cfg.model_copy(update={"tracking": file_cfg.tracking})
    done, shown_id = len(history) - 1, titled(store.run_id, store.get("name"))
    lines = [
        f"run {shown_id}: resuming after iteration {done}"
        if history
        else f"run {shown_id}: resuming; its baseline had not finished, so it trains again"
    ]
    lines += [f"changed: {change}" for change in changes]
    if state(store) == FINISHED and not changes:
        lines.append(
            f"note: it had finished ({store.get('stop_reason')}); --iterations or --max-cost "
            "goes on, --new starts another run"
        )
    started_file = store.get("file_config")
    if started_file is not None:
        now, then = flatten(file_cfg.model_dump()), flatten(started_file)
        edited = [
            key for key in now if now[key] != then.get(key) and not key.startswith(TRACKING_PREFIX)
        ]
        if edited:
            lines.append(
                f"note: {CONFIG_NAME} changed since this run started ({', '.join(edited)}); "
                "the run keeps its own settings (--new starts a run with the file's)"
            )
    return Plan(store, cfg, lines)


def scored_before(workspace: Path, train_py: str, but: str) -> str | None:
    """Where this train.py scored in another run of the workspace ("0.8312 in run R"), or None."""
    for folder in reversed(list_runs(workspace)):
        if folder.name == but:
            continue
        try:
            store = Store(folder, readonly=True)
        except StoreError:
            continue  # a damaged store is reported where it is used, not here
        try:
            for it in store.iterations():
                if it.train_py == train_py and it.value is not None:
                    return f"{fmt(it.value)} in run {folder.name}"
        finally:
            store.close()
    return None


def create(workspace: Path, cfg: Config, file_cfg: Config, name: str | None = None) -> Store:
    """The new run's store, its settings (and its name, if given) saved."""
    store = Store.create(runs_dir(workspace) / new_run_id(workspace), cfg.model_dump())
    store.set(file_config=file_cfg.model_dump(), state=RUNNING, origin=origin_of(workspace))
    if name:
        store.set(name=name)
    return store


def check_name(name: str | None) -> str | None:
    """A run's name as given with --name: one line of text, at most NAME_CHARS characters."""
    if name is None:
        return None
    shown = one_line(name).strip()
    if not shown or shown != name.strip() or len(shown) > NAME_CHARS:
        raise ConfigError(
            f"--name {name!r}: give a name of 1 to {NAME_CHARS} characters on one line"
        )
    return shown


def titled(run_id: str, name: str | None) -> str:
    """How a run is named wherever it is listed: its id, and its name when it has one."""
    return f"{run_id} ({name})" if name else run_id


def describe_settings(cfg: Config) -> str:
    agent = cfg.agent.name + (f" ({cfg.agent.model})" if cfg.agent.model else "")
    cost = f", max ${cfg.loop.max_cost_usd:g}" if cfg.loop.max_cost_usd else ""
    return (
        f"agent {agent}, {plural(cfg.loop.iterations, 'iteration')}{cost}, "
        f"budget {cfg.budget_secs:g}s "
        f"+ {cfg.grace_secs:g}s grace, context {cfg.loop.context}, "
        f"{plural(cfg.loop.noise_runs, 'baseline run')}, "
        f"{plural(cfg.loop.confirm_runs, 'confirmation run')}"
        + ("" if cfg.holdout else ", no holdout")
        + (f", {plural(cfg.run.workers, 'worker')}, asynchronous" if cfg.run.parallel else "")
    )


def agents_used(iterations: list[dict]) -> str:
    """Which agent and model proposed which iterations: "replay (iterations 1-3)"."""
    spans: list[list] = []
    for it in iterations:
        if it["iteration"] == 0:
            continue
        who = " ".join(part for part in (it["agent"], it["model"]) if part) or "unknown"
        if spans and spans[-1][0] == who:
            spans[-1][2] = it["iteration"]
        else:
            spans.append([who, it["iteration"], it["iteration"]])
    return "; ".join(
        f"{who} (iteration {a})" if a == b else f"{who} (iterations {a}-{b})" for who, a, b in spans
    )
