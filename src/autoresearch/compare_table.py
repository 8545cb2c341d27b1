"""The people's view of `autoresearch compare`: the seeds' table, on a terminal or in markdown,
with the settings in which the runs differ highlighted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
from autoresearch.context import fmt
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
        Column("run", lambda r: r.run if r.state == FINISHED else f"{r.run} ({r.state})"),
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
        Column("cost/iter", lambda r: money(r.cost_per_iteration)),
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
    lines.append(
        f"to {GAIN_SHARE:.0%}: the first iteration whose best reached "
        f"{GAIN_SHARE:.0%} of the run's final gain over its baseline"
    )
    return lines + cmp.skipped


def render(cmp: Comparison, console: Console) -> None:
    """A table of short cells, each whole (a narrow terminal wraps the lines, never cuts a
    number); the differing settings without a column of their own follow it, a line per run."""
    *cols, last = columns(cmp)
    extra = last if last.header == DIFFERS else None
    cols += [] if extra else [last]
    title = Text(one_line(f"{len(cmp.runs)} runs of {cmp.metric} ({cmp.direction})"))
    table = Table(title=title, box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    rows = [[one_line(col.cell(r)) for col in cols] for r in cmp.runs]
    for n, col in enumerate(cols):
        style = HIGHLIGHT if _highlighted(col, cmp) else ""
        widest = max([len(row[n]) for row in rows] + [len(h) for h in col.header.split("\n")])
        table.add_column(Text(col.header, style=style), min_width=widest, overflow="fold")
    for row in rows:
        cells = [
            Text(c, style=HIGHLIGHT if _highlighted(col, cmp) else "")
            for c, col in zip(row, cols, strict=True)
        ]
        table.add_row(*cells)
    console.print(table)
    if extra:
        for r in cmp.runs:
            console.print(Text(one_line(f"{r.run} {DIFFERS}: {extra.cell(r)}"), style=HIGHLIGHT))
    for line in notes(cmp):
        console.print(Text(one_line(line)))


def markdown(cmp: Comparison) -> str:
    """The table in markdown: the differing settings' columns in bold."""
    cols = columns(cmp)

    def cell(text: str, col: Column) -> str:
        text = markdown_inline(text.replace("\n", " "))
        return f"**{text}**" if _highlighted(col, cmp) and text else text

    lines = [
        "| " + " | ".join(cell(col.header, col) for col in cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for r in cmp.runs:
        lines.append("| " + " | ".join(cell(col.cell(r), col) for col in cols) + " |")
    lines.append("")
    lines += [f"- {markdown_inline(line)}" for line in notes(cmp)]
    return "\n".join(lines) + "\n"
