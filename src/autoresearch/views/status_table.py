"""The people's view of `autoresearch status`: a table of iterations, the best, the cost."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from autoresearch.core.records import (
    BASELINE,
    CRASH,
    DISCARD,
    INVALID,
    KEEP,
    SELF_REPORTED,
    STATUSES,
)
from autoresearch.core.safe_text import one_line
from autoresearch.loop.runs import agents_used, titled
from autoresearch.store.workspace import describe_origin
from autoresearch.views.display import clock, phase_text
from autoresearch.views.verdict_text import status_lines

ROOMY = 110  # from this width on, the table also shows the agent's and the training's seconds
STYLE = {KEEP: "green", BASELINE: "cyan", DISCARD: "yellow", CRASH: "red", INVALID: "red"}


def _num(value, digits=4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def render(snap: dict, console: Console, wide: bool = False) -> None:
    """One line per iteration, its description cut to fit the terminal (80 columns and up);
    wide: every description whole, wrapped."""
    metric = one_line(snap["metric"]["name"])
    marked = snap["metric"]["self_reported"]
    heading = metric + ("*" if marked else "")  # the footnote below says why
    table = Table(
        title=Text(one_line(f"run {titled(snap['run'], snap['name'])} ({snap['state']})")),
        expand=True,
    )
    timings = console.width >= ROOMY  # agent and training seconds, where there is room
    columns = ["iter", "status", heading, "cost $", *(["agent s", "train s"] if timings else [])]
    for column in columns:
        justify = "left" if column == "status" else "right"
        least = max(len(s) for s in STATUSES) if column == "status" else max(len(column), 4)
        table.add_column(column, justify=justify, no_wrap=True, min_width=least)
    table.add_column(
        "description", no_wrap=not wide, overflow="fold" if wide else "ellipsis", ratio=1
    )
    for it in snap["iterations"]:
        text = it["description"] or ""
        if it["reason"] and it["status"] in ("crash", "invalid"):
            text = f"[{it['reason']}] {text}".strip()  # first: a cut description keeps it
        style = STYLE.get(it["status"], "")
        seconds = [_num(it["agent_seconds"], 1), _num(it["train_seconds"], 1)] if timings else []
        table.add_row(
            str(it["iteration"]),
            Text(it["status"], style=style),
            _num(it["value"]),
            _num(it["cost_usd"], 3),
            *seconds,
            # the agent's words are text: no markup, no control codes
            Text(one_line(text), no_wrap=not wide, overflow="fold" if wide else "ellipsis"),
        )
    console.print(table, soft_wrap=False)  # the table fits the width; no line runs past it
    lines = [f"started from {describe_origin(snap['origin'])}"] if snap.get("origin") else []
    if marked:
        lines.append(
            f"* {metric} is {SELF_REPORTED}: read from train.py's log, not scored by autoresearch"
        )
    best = snap["best"]
    cost = "unknown" if snap["cost_usd"] is None else f"${snap['cost_usd']:.2f}"
    agents = agents_used(snap["iterations"])
    if agents:
        lines.append(f"agents: {agents}")
    lines.append(f"strategist: {strategist_line(snap['strategist'])}")
    where = (
        f"{_num(best['value'])} at iteration {best['iteration']}"
        if best["iteration"] is not None
        else "no score yet"
    )
    lines += noise_lines(snap)
    lines.append(f"best {metric}: {where}; cost {cost}")
    if best["iteration"] is not None:
        lines.append(keep_line(snap))
    if snap["stop_reason"] and snap["state"] != "running":
        lines.append(f"{snap['state']}: {snap['stop_reason']}")
    lines += status_lines(snap)  # promotions, suspicious keeps, the ablation (verdict_text.py)
    if snap["live"]:
        now = phase_text(snap["live"], snap["live"]["elapsed_secs"])
        eta = f"; ETA {clock(snap['eta_secs'])}" if snap["eta_secs"] else ""
        lines.append(f"now: {now}{eta}")
    for line in lines:  # wrapped to the width (80 columns through a pipe), between words
        console.print(Text(one_line(line)), soft_wrap=False)


def keep_line(snap: dict) -> str:
    """ "a keep needs: val_accuracy over 0.8234 (best + 0.0111, the mean of 3 runs)" """
    needs, best = snap["keep_needs"], snap["best"]["value"]
    ahead = needs["margin"] if snap["metric"]["direction"] == "maximize" else -needs["margin"]
    over = "over" if ahead >= 0 else "under"
    runs = "one run" if needs["runs"] == 1 else f"the mean of {needs['runs']} runs"
    return (
        f"a keep needs: {one_line(snap['metric']['name'])} {over} {_num(best + ahead)} "
        f"(best {ahead:+.4f}, {runs})"
    )


def noise_lines(snap: dict) -> list[str]:
    """The noise floor, and the training time repeats took."""
    noise = snap["noise"]
    floor = (
        f"noise: sigma {noise['sigma']:.4f} between seeds ({noise['runs']} runs)"
        if noise["sigma"] is not None
        else "noise: not measured yet (no iteration has two runs)"
    )
    return [
        floor,
        f"training: {snap['train_seconds']:.1f} s, of it repeats {snap['repeat_seconds']:.1f} s",
    ]


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
