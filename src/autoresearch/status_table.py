"""The people's view of `autoresearch status`: a table of iterations, the best, the cost."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from autoresearch.runs import agents_used
from autoresearch.safe_text import one_line

STYLE = {"keep": "green", "baseline": "cyan", "discard": "yellow", "crash": "red", "invalid": "red"}


def _num(value, digits=4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def render(snap: dict, console: Console) -> None:
    metric = one_line(snap["metric"]["name"])
    table = Table(title=Text(one_line(f"run {snap['run']} ({snap['state']})")))
    for column in ("iter", "status", metric, "cost $", "agent s", "train s"):
        justify = "left" if column == "status" else "right"
        table.add_column(column, justify=justify, no_wrap=True, min_width=max(len(column), 4))
    table.add_column("description", overflow="ellipsis", max_width=max(20, console.width - 66))
    for it in snap["iterations"]:
        text = it["description"] or ""
        if it["reason"] and it["status"] in ("crash", "invalid"):
            text = f"{text} [{it['reason']}]".strip()
        style = STYLE.get(it["status"], "")
        table.add_row(
            str(it["iteration"]),
            Text(it["status"], style=style),
            _num(it["value"]),
            _num(it["cost_usd"], 3),
            _num(it["agent_seconds"], 1),
            _num(it["train_seconds"], 1),
            Text(one_line(text)),  # the agent's words are text: no markup, no control codes
        )
    console.print(table)
    best = snap["best"]
    cost = "unknown" if snap["cost_usd"] is None else f"${snap['cost_usd']:.2f}"
    agents = agents_used(snap["iterations"])
    if agents:
        console.print(Text(one_line(f"agents: {agents}")))
    where = (
        f"{_num(best['value'])} at iteration {best['iteration']}"
        if best["iteration"] is not None
        else "no score yet"
    )
    stop = one_line(snap["stop_reason"] or "")
    console.print(Text(noise_line(snap)))
    console.print(Text(f"best {metric}: {where}; cost {cost}; {stop}"))


def noise_line(snap: dict) -> str:
    """The noise floor and the training time repeats took, in one line."""
    noise = snap["noise"]
    floor = (
        f"noise: sigma {noise['sigma']:.4f} between seeds (from {noise['runs']} runs)"
        if noise["sigma"] is not None
        else "noise: not measured (no iteration with two runs)"
    )
    return (
        f"{floor}; training {snap['train_seconds']:.1f} s, "
        f"of which repeats (noise and confirmation runs) {snap['repeat_seconds']:.1f} s"
    )
