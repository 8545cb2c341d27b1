"""`autoresearch ablate`: what each kept change of a run contributes to its best."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from autoresearch.cli.common import (
    EXIT_REFUSED,
    Json,
    RunId,
    Workspace,
    err,
    fail,
    out,
    signal_exit,
)
from autoresearch.core.config import ConfigError
from autoresearch.core.records import Ablated
from autoresearch.core.safe_text import one_line, strict_json


def to_json(changes: list[Ablated]) -> list[dict]:
    return [
        {
            "iteration": c.iteration,
            "description": c.description,
            "applies": c.applies,
            "contribution": c.contribution,
            "spread": c.spread,
            "values": c.values,
            "reason": c.reason,
        }
        for c in changes
    ]


def _num(value: float | None, sign: bool = False) -> str:
    return "" if value is None else (f"{value:+.4f}" if sign else f"{value:.4f}")


def table(changes: list[Ablated], metric: str) -> Table:
    """A row per kept change: its contribution (the best's mean minus the mean without it,
    positive when it helps), the spread (standard error), the runs without it."""
    best = changes[0]
    title = one_line(
        f"ablation of iteration {best.best_iteration} ({metric}; the best: "
        + ", ".join(_num(v) for v in best.best_values)
        + ")"
    )
    grid = Table(title=Text(title), expand=False)
    for name in ("iter", "contribution", "±", "runs without it", "change"):
        grid.add_column(name, justify="left" if name in ("change", "runs without it") else "right")
    for c in changes:
        runs = ", ".join(_num(v) for v in c.values) if c.applies else ""
        text = c.description + (f" [{c.reason}]" if c.reason else "")
        grid.add_row(
            str(c.iteration),
            _num(c.contribution, sign=True),
            _num(c.spread),
            runs,
            Text(one_line(text)),
        )
    return grid


def ablate(directory: Workspace = Path("."), run_id: RunId = None, as_json: Json = False) -> None:
    """Take each kept change out of the run's best, train it with the run's seeds, and say
    what each contributes (mean and spread)."""
    from autoresearch.loop.ablation import ablate as ablate_run
    from autoresearch.loop.runs import RunRefused, open_run
    from autoresearch.store.runstate import RunBusy, describe, signal_of, stop_on_signals
    from autoresearch.store.store import Store

    try:
        with stop_on_signals():
            found = open_run(directory, run_id)
            folder, metric = found.dir, found.config().metric
            found.close()
            store = Store(folder)
            try:
                changes = ablate_run(directory, store, lambda line: err.print(one_line(line)))
            finally:
                store.close()
    except (ConfigError, RunRefused, RunBusy) as e:
        raise fail(str(e), EXIT_REFUSED) from None
    except KeyboardInterrupt as interrupt:
        signum = signal_of(interrupt)
        err.print(f"interrupted by {describe(signum)}")
        raise typer.Exit(signal_exit(signum)) from None
    if as_json:
        best = changes[0]
        print(strict_json({
            "run": folder.name, "metric": metric, "best_iteration": best.best_iteration,
            "budget_secs": best.budget_secs, "best_values": best.best_values,
            "changes": to_json(changes),
        }))  # fmt: skip
        return
    out.print(table(changes, metric))
    out.print(
        Text(
            "contribution: the best's mean minus the mean without the change (positive: it "
            "helps); ±: its standard error"
        )
    )
