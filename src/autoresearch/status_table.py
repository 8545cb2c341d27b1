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
    console.print(Text(one_line(f"strategist: {strategist_line(snap['strategist'])}")))
    where = (
        f"{_num(best['value'])} at iteration {best['iteration']}"
        if best["iteration"] is not None
        else "no score yet"
    )
    stop = one_line(snap["stop_reason"] or "")
    console.print(Text(f"best {metric}: {where}; cost {cost}; {stop}"))


def strategist_line(strategist: dict) -> str:
    """ "anthropic (model), every 5 iterations ...; version 2 of 2, 1 reply rejected, $0.04" """
    calls = strategist["strategies"]
    versions = [s["version"] for s in calls if s["version"] is not None]
    if not calls:
        return strategist["detail"]
    cost = strategist["cost_usd"]
    parts = [strategist["detail"], f"version {versions[-1]} in force"]
    rejected = len(calls) - len(versions)
    if rejected:
        parts.append(f"{rejected} repl{'y' if rejected == 1 else 'ies'} rejected")
    parts.append("cost unknown" if cost is None else f"cost ${cost:.2f}")
    return "; ".join(parts)


def strategy_lines(snap: dict) -> list[str]:
    """What `autoresearch strategy` prints: each version with its text, each rejected reply."""
    strategist = snap["strategist"]
    lines = [one_line(f"run {snap['run']}: strategist {strategist_line(strategist)}")]
    for s in strategist["strategies"]:
        where = "before any iteration" if s["after_iteration"] < 0 else (
            f"after iteration {s['after_iteration']}"
        )  # fmt: skip
        who = " ".join(part for part in (s["agent"], s["model"]) if part)
        cost = "" if not who else (
            ", cost unknown" if s["cost_usd"] is None else f", ${s['cost_usd']:.4f}"
        )  # fmt: skip
        head = f"{where} ({s['trigger']}{f', {who}' if who else ''}{cost})"
        if s["version"] is None:
            lines += ["", one_line(f"rejected {head}: {s['reason']}")]
            continue
        lines += ["", one_line(f"version {s['version']}, {head}:")]
        lines += [f"    {one_line(line)}" for line in s["text"].splitlines()]
    return lines
