"""The people's view of `autoresearch compare`: the seeds' table, on a terminal or in markdown,
with the settings in which the runs differ highlighted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from autoresearch.core.records import FINISHED
from autoresearch.core.safe_text import markdown_inline, one_line
from autoresearch.core.text import fmt
from autoresearch.loop.runs import show_setting
from autoresearch.views.compare import (
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

HIGHLIGHT = "bold yellow"
DIFFERS = "differs in"
SEPARATOR = " · "  # between a run's facts where the table is too wide for the terminal  # the column of the differing settings without one of their own


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
    return r.confirmation or ""


def _noise(r: RunRow) -> str:
    return f"{r.noise['sigma']:.4f}" if r.noise and r.noise.get("sigma") else "-"


def _promoted(r: RunRow) -> str:
    """ "x4 +0.0123 holds": the latest promotion's budget factor, gain and verdict."""
    p = r.promotion
    if not p:
        return "-"
    gain = "none" if p["gain"] is None else f"{p['gain']:+.4f}"
    return f"x{p['budget_secs'] / r.budget_secs:g} {gain} {'holds' if p['holds'] else 'fails'}"


def _others(cmp: Comparison) -> list[str]:
    """Differing settings without a column of their own."""
    own = (*SHOWN, *CONFIRMATION_KEYS)
    return [k for k in cmp.differing if k not in own and not k.startswith(STRATEGIST_PREFIX)]


def _run(r: RunRow) -> str:
    state = "" if r.state == FINISHED else f" ({r.state})"
    bundle = f" [{Path(r.bundle).name}]" if r.bundle else ""
    return f"{r.run}{state}{bundle}" + (" (other hardware)" if r.other_hardware else "")


def _settings(cmp: Comparison) -> list[Column]:
    """A column for each of the shown settings, where they differ between the runs."""
    cols = [
        Column("agent", _agent, (AGENT, MODEL)),
        Column("budget", lambda r: f"{r.budget_secs:g} s", (BUDGET,)),
        Column("context", lambda r: r.context, (CONTEXT,)),
    ]
    if any(r.strategist is not None for r in cmp.runs):
        cols.append(Column("strategist", lambda r: r.strategist or "", prefix=STRATEGIST_PREFIX))
    if any(r.confirmation is not None for r in cmp.runs):
        cols.append(Column("confirmation", _confirmation, CONFIRMATION_KEYS))
    return cols


def columns(cmp: Comparison) -> list[Column]:
    """The run, its name (where a run has one), the settings in which the runs differ, and
    what each run got; a setting that is the same in every run is said once, under the table."""
    cols = [Column("run", _run)]
    if any(r.name for r in cmp.runs):
        cols.append(Column("name", lambda r: r.name or ""))
    cols += [col for col in _settings(cmp) if _highlighted(col, cmp)]
    cols += [
        Column("iters", lambda r: str(r.iterations)),
        Column("keeps", lambda r: str(r.keeps)),
        Column("best", _best),
    ]
    for name in cmp.holdout_names:
        cols.append(Column(name, lambda r, name=name: fmt(r.holdout.get(name))))
    if any(r.promotion for r in cmp.runs):
        cols.append(Column("promoted", _promoted))
    if any(r.noise and r.noise.get("sigma") for r in cmp.runs):
        cols.append(Column("noise", _noise))
    cols.append(Column("cost", lambda r: money(r.cost_usd)))
    if cmp.has_costs:
        cols.append(
            Column("cost/iter", lambda r: money(r.cost_per_iteration) if r.iterations else "-")
        )
    cols.append(
        Column(
            f"to {GAIN_SHARE:.0%}",
            lambda r: "-" if r.iterations_to_gain is None else str(r.iterations_to_gain),
        )
    )
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


def _same(cmp: Comparison) -> str:
    """The shown settings that are the same in every run: "agent hpo, budget 3 s, ..."."""
    first = cmp.runs[0]
    same = [col for col in _settings(cmp) if not _highlighted(col, cmp) and col.cell(first)]
    return ", ".join(f"{col.header} {col.cell(first)}" for col in same)


def notes(cmp: Comparison) -> list[str]:
    lines = []
    if same := _same(cmp):
        lines.append(f"every run: {same}")
    lines.append(f"best: the best {cmp.metric} ({cmp.direction}) @ its iteration")
    if any(r.noise and r.noise.get("sigma") for r in cmp.runs):
        lines.append(f"noise: how much {cmp.metric} varies between seeds (standard deviation)")
    if cmp.budgets_differ:
        budgets = ", ".join(sorted({f"{r.budget_secs:g} s" for r in cmp.runs}))
        lines.append(f"budgets differ ({budgets}): a longer budget trains more per iteration")
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
    if any(r.promotion for r in cmp.runs):
        lines.append(
            "promoted: the best and the baseline again at k times the budget (xk), the gain, "
            "and whether the loop's test confirms it"
        )
    return lines + cmp.skipped


@dataclass
class Grid:
    """The table as text: what the terminal, markdown and the dashboard show."""

    headers: list[str]
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
    """A table of short cells where it fits the terminal, else a block of lines per run (no
    line wider than the terminal, no number cut); the differing settings without a column of
    their own follow, a line per run; then the notes, wrapped."""
    g = grid(cmp)
    shown = [n for n, header in enumerate(g.headers) if header != DIFFERS]
    title = Text(one_line(f"{len(cmp.runs)} runs of {cmp.metric} ({cmp.direction})"))
    table = Table(
        title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True
    )
    style = [HIGHLIGHT if on else "" for on in g.highlighted]
    for n in shown:
        table.add_column(Text(g.headers[n], style=style[n]), no_wrap=True)
    for row in g.rows:
        table.add_row(*(Text(row[n], style=style[n]) for n in shown))
    natural = Measurement.get(console, console.options.update(max_width=10**6), table).maximum
    if natural <= console.width:
        console.print(table, soft_wrap=False)
    else:
        console.print(title, soft_wrap=False)
        for row in g.rows:
            pairs = [
                Text.assemble((g.headers[n], style[n]), " ", (row[n], style[n])) for n in shown
            ]
            for line in _packed(Text(row[0], style="bold"), pairs[1:], console.width):
                console.print(line, soft_wrap=False, overflow="fold")
    if DIFFERS in g.headers:
        n = g.headers.index(DIFFERS)
        for r, row in zip(cmp.runs, g.rows, strict=True):
            line = Text(one_line(f"{r.run} {DIFFERS}: {row[n]}"), style=HIGHLIGHT)
            console.print(line, soft_wrap=False)
    for line in g.notes:
        console.print(Text(one_line(line)), soft_wrap=False)


def _packed(head: Text, pairs: list[Text], width: int) -> list[Text]:
    """A run's block: its id, then its "header value" pairs, indented, as many to a line as fit."""
    lines, line = [head], Text("  ")
    for pair in pairs:
        if line.plain.strip() and len(line) + len(SEPARATOR) + len(pair) > width:
            lines.append(line)
            line = Text("  ")
        line.append_text(Text(SEPARATOR) if line.plain.strip() else Text())
        line.append_text(pair)
    return lines + ([line] if line.plain.strip() else [])


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
