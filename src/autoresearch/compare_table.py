"""The people's view of `autoresearch compare`: the seeds' table, on a terminal or in markdown,
with the settings in which the runs differ highlighted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from autoresearch.compare import (
    AGENT,
    BUDGET,
    CONFIRMATION_KEYS,
    CONTEXT,
    GAIN_SHARE,
    MODEL,
    SHOWN,
    STRATEGIST_PREFIX,
    Comparison,
    RunRow,
)
from autoresearch.condense import fmt
from autoresearch.records import FINISHED
from autoresearch.runs import show_setting
from autoresearch.safe_text import markdown_inline, one_line

HIGHLIGHT = "bold yellow"
DIFFERS = "differs in"  # the column of the differing settings without one of their own


@dataclass
class Column:
    header: str
    cell: Callable[[RunRow], str]
    keys: tuple[str, ...] = ()  # the settings it shows: highlighted where the runs differ them
    prefix: str = ""  # or every setting under this prefix


def money(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"${value:.2f}" if value >= 1 or value == 0 else f"${value:.4f}"


def _run(r: RunRow) -> str:
    state = "" if r.state == FINISHED else f" ({r.state})"
    bundle = f" [{Path(r.bundle).name}]" if r.bundle else ""
    return f"{r.run}{state}{bundle}" + (" (other hardware)" if r.other_hardware else "")


def _agent(r: RunRow) -> str:
    return r.agent + (f" ({r.model})" if r.model else "")


def _best(r: RunRow) -> str:
    return "none" if r.best is None else f"{fmt(r.best)} @{r.best_iteration}"


def _confirmation(r: RunRow) -> str:
    noise = f"; noise {r.noise['sigma']:.4f}" if r.noise and r.noise.get("sigma") else ""
    return (r.confirmation or "") + noise


def _others(cmp: Comparison) -> list[str]:
    """Differing settings without a column of their own."""
    own = (*SHOWN, *CONFIRMATION_KEYS)
    return [k for k in cmp.differing if k not in own and not k.startswith(STRATEGIST_PREFIX)]


def columns(cmp: Comparison) -> list[Column]:
    budget = "budget\n(differs)" if cmp.budgets_differ else "budget"
    cols = [
        Column("run", _run),
        Column("agent", _agent, (AGENT, MODEL)),
        Column(budget, lambda r: f"{r.budget_secs:g} s", (BUDGET,)),
        Column("context", lambda r: r.context, (CONTEXT,)),
    ]
    if any(r.strategist is not None for r in cmp.runs):
        cols.append(Column("strategist", lambda r: r.strategist or "", prefix=STRATEGIST_PREFIX))
    if any(r.confirmation is not None or r.noise for r in cmp.runs):
        cols.append(Column("confirmation", _confirmation, CONFIRMATION_KEYS))
    cols += [
        Column("iters", lambda r: str(r.iterations)),
        Column("keeps", lambda r: str(r.keeps)),
        Column("best", _best),
    ]
    for name in cmp.holdout_names:
        cols.append(Column(name, lambda r, name=name: fmt(r.holdout.get(name))))
    cols += [
        Column("cost", lambda r: money(r.cost_usd)),
        Column("cost/iter", lambda r: money(r.cost_per_iteration) if r.iterations else "-"),
        Column(
            f"to {GAIN_SHARE:.0%}",
            lambda r: "-" if r.iterations_to_gain is None else str(r.iterations_to_gain),
        ),
    ]
    others = _others(cmp)
    if others:
        cols.append(
            Column(
                DIFFERS,
                lambda r: ", ".join(f"{k} {show_setting(r.settings.get(k))}" for k in others),
                tuple(others),
            )
        )
    return cols


def _highlighted(col: Column, cmp: Comparison) -> bool:
    return any(k in col.keys or (col.prefix and k.startswith(col.prefix)) for k in cmp.differing)


def notes(cmp: Comparison) -> list[str]:
    lines = [f"best: the best {cmp.metric} ({cmp.direction}) @ its iteration"]
    if cmp.budgets_differ:
        budgets = ", ".join(sorted({f"{r.budget_secs:g} s" for r in cmp.runs}))
        lines.append(f"budgets differ ({budgets}): a longer budget trains more per iteration")
    if cmp.differing:
        lines.append(f"the runs differ in: {', '.join(cmp.differing)}")
    for r in cmp.runs:
        if r.hardware:
            lines.append(f"run {r.run} ran on {r.hardware}")
    if cmp.hardware_differs:
        lines.append(
            "other hardware: those runs are not comparable budget for budget (a budget buys "
            "another amount of training on another machine)"
        )
    lines.append(
        f"to {GAIN_SHARE:.0%}: the first iteration whose best reached "
        f"{GAIN_SHARE:.0%} of the run's final gain over its baseline"
    )
    return lines + cmp.skipped


@dataclass
class Grid:
    """The table as text: what the terminal, markdown and the dashboard show."""

    headers: list[str]  # a header may have a line break ("budget\n(differs)")
    highlighted: list[bool]  # per column: a setting in which the runs differ
    rows: list[list[str]]  # per run, a cell per column (one line each)
    notes: list[str]


def grid(cmp: Comparison) -> Grid:
    cols = columns(cmp)
    return Grid(
        [col.header for col in cols],
        [_highlighted(col, cmp) for col in cols],
        [[one_line(col.cell(r)) for col in cols] for r in cmp.runs],
        notes(cmp),
    )


def render(cmp: Comparison, console: Console) -> None:
    """A table of short cells, each whole (a narrow terminal wraps the lines, never cuts a
    number); the differing settings without a column of their own follow it, a line per run."""
    g = grid(cmp)
    shown = [n for n, header in enumerate(g.headers) if header != DIFFERS]
    title = Text(one_line(f"{len(cmp.runs)} runs of {cmp.metric} ({cmp.direction})"))
    table = Table(
        title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True
    )
    style = [HIGHLIGHT if on else "" for on in g.highlighted]
    for n in shown:
        widest = max([len(row[n]) for row in g.rows] + [len(h) for h in g.headers[n].split("\n")])
        table.add_column(Text(g.headers[n], style=style[n]), min_width=widest, overflow="fold")
    for row in g.rows:
        table.add_row(*(Text(row[n], style=style[n]) for n in shown))
    console.print(table)
    if DIFFERS in g.headers:
        n = g.headers.index(DIFFERS)
        for r, row in zip(cmp.runs, g.rows, strict=True):
            console.print(Text(one_line(f"{r.run} {DIFFERS}: {row[n]}"), style=HIGHLIGHT))
    for line in g.notes:
        console.print(Text(one_line(line)))


def markdown(cmp: Comparison) -> str:
    """The table in markdown: the differing settings' columns in bold."""
    g = grid(cmp)

    def line(cells: list[str]) -> str:
        shown = [markdown_inline(c.replace("\n", " ")) for c in cells]
        bold = [f"**{c}**" if on and c else c for c, on in zip(shown, g.highlighted, strict=True)]
        return "| " + " | ".join(bold) + " |"

    lines = [line(g.headers), "|" + "---|" * len(g.headers), *map(line, g.rows), ""]
    lines += [f"- {markdown_inline(note)}" for note in g.notes]
    return "\n".join(lines) + "\n"
