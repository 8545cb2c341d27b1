"""report.md and progress.png: how a run got from the baseline to its best, for the morning after."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from autoresearch.core.config import Config
from autoresearch.core.history import best_so_far
from autoresearch.core.log_metrics import self_reported, source_note
from autoresearch.core.records import (
    BASELINE,
    CRASH,
    DISCARD,
    KEEP,
    SELF_REPORTED,
    STATUSES,
    Iteration,
    Strategy,
)
from autoresearch.core.safe_text import fenced, markdown_inline, one_line, shorten
from autoresearch.core.text import fmt, plural
from autoresearch.loop.runs import agents_used, titled
from autoresearch.prompt.runfacts import unified_diff
from autoresearch.prompt.strategy_history import tally
from autoresearch.store.layout import PLOT_NAME, REPORT_NAME
from autoresearch.store.store import Store, write_atomically
from autoresearch.store.workspace import describe_origin
from autoresearch.views.export import hint
from autoresearch.views.holdout import section as holdout_section
from autoresearch.views.plotting import literal, png
from autoresearch.views.snapshot import snapshot
from autoresearch.views.status_table import noise_lines, strategist_line
from autoresearch.views.verdict_text import report_section

NEAR = 4  # points within this many margins of the kept range stay on the plot
LABEL_CHARS = 40  # a keep's label: the start of its description
COLORS = {BASELINE: "tab:blue", KEEP: "tab:green", DISCARD: "tab:orange", CRASH: "tab:red"}


def useful_range(history: list[Iteration]) -> tuple[float, float] | None:
    """The y-limits that show the run's progress: the baseline and keeps with a margin, widened
    for the points near them; a point far outside (a 0.4 beside keeps at 0.85) is left out, so
    that it does not squash the keeps into one pixel row. (The dashboard's chart.js does the same.)"""
    values = [it.value for it in history if it.value is not None]
    if not values:
        return None
    kept = [it.value for it in history if it.kept and it.value is not None]
    core = kept or values
    lo, hi = min(core), max(core)
    margin = max((hi - lo) * 0.5, abs(hi) * 0.01, 1e-9)
    low, high = lo - margin, hi + margin
    for v in values:
        if lo - NEAR * margin <= v < low:
            low = v - margin * 0.2
        if high < v <= hi + NEAR * margin:
            high = v + margin * 0.2
    return low, high


def plot(history: list[Iteration], cfg: Config) -> bytes:
    """progress.png's bytes."""
    return png(figure(history, cfg))


def figure(history: list[Iteration], cfg: Config):
    """The progress plot: every iteration, the best so far, the keeps labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(11, 5.5), dpi=110)
    limits = useful_range(history)
    low, high = limits or (0.0, 1.0)
    outside = [it for it in history if it.value is not None and not low <= it.value <= high]
    for status, color in COLORS.items():
        points = [
            (it.iteration, it.value)
            for it in history
            if it.status == status and it.value is not None and it not in outside
        ]
        if points:
            ax.scatter(*zip(*points, strict=True), color=color, label=status, s=28, zorder=3)
    for it in outside:  # off the useful range: drawn at its edge, pointing where it lies
        below = it.value < low
        ax.scatter([it.iteration], [low if below else high], marker="v" if below else "^",
                   color=COLORS.get(it.status, "tab:gray"), s=36, clip_on=False, zorder=3)  # fmt: skip
    if outside:
        ax.scatter([], [], marker="v", color="tab:gray", label="off the scale")
    bests = best_so_far(history, cfg.better)
    steps = [(it.iteration, b) for it, b in zip(history, bests, strict=True) if b is not None]
    if steps:
        ax.step(*zip(*steps, strict=True), where="post", color="black", lw=1.2, label="best so far")
    failed = [it.iteration for it in history if it.value is None]
    if failed and limits:  # drawn on the floor of the plot
        ax.scatter(failed, [low] * len(failed), marker="x", color="tab:red",
                   label="crash / invalid", zorder=3, clip_on=False)  # fmt: skip
    for it in history:  # each keep with what it tried, as in Karpathy's analysis notebook
        if it.status == KEEP and it.value is not None and it not in outside:
            ax.annotate(shorten(it.description, LABEL_CHARS), (it.iteration, it.value),
                        xytext=(4, 6), textcoords="offset points", fontsize=7, rotation=25,
                        color="tab:green", clip_on=True)  # fmt: skip
    if limits:
        ax.set_ylim(low, high)
    if history:  # room on the right for the last keep's label
        last = history[-1].iteration
        ax.set_xlim(-0.03 * max(last, 1) - 0.2, last + max(1.0, 0.12 * last))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("iteration")
    ax.set_ylabel(f"{one_line(cfg.metric)} ({cfg.direction})")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8)
    literal(fig)  # descriptions and the metric's name are text, never markup
    fig.tight_layout()
    return fig


def markdown(
    store: Store, history: list[Iteration], cfg: Config, plot_failed: str | None = None
) -> str:
    snap = snapshot(store)
    metric = markdown_inline(cfg.metric)
    column = f"{metric} ({SELF_REPORTED})" if self_reported(cfg) else metric
    counts = Counter(it.status for it in history)
    base = history[0] if history else None
    best = snap["best"]
    best_at, way_out = "none yet", []
    if best["iteration"] is not None:
        best_at = f"{fmt(best['value'])} at iteration {best['iteration']}"
        way_out = [f"- {hint(str(store.dir.parents[2]), store.run_id)}"]
    lines = [
        f"# Run {markdown_inline(titled(store.run_id, snap['name']))}: {metric} ({cfg.direction})",
        "",
        f"- state: {snap['state']} ({markdown_inline(snap['stop_reason'] or '')})",
        f"- metric: {markdown_inline(source_note(cfg))}",
        f"- budget: {cfg.budget_secs:g} s per experiment (+{cfg.grace_secs:g} s grace)",
        f"- iterations: {len(history)} ("
        + ", ".join(f"{s} {counts[s]}" for s in STATUSES if counts[s])
        + ")",
        f"- baseline: {fmt(base.value if base else None)}; best: {best_at}",
        f"- agents: {markdown_inline(agents_used(snap['iterations']) or 'none yet')}",
        *(
            [f"- started from: {markdown_inline(describe_origin(snap['origin']))}"]
            if snap["origin"]
            else []
        ),
        *way_out,
        "- cost: "
        + ("unknown" if snap["cost_usd"] is None else f"${snap['cost_usd']:.2f}")
        + " (agent and strategist)",
        f"- strategist: {markdown_inline(strategist_line(snap['strategist']))}",
        f"- time: {sum(it.wall_seconds for it in history) / 60:.1f} min "
        f"(agent {sum(it.agent_seconds for it in history) / 60:.1f}, "
        f"training {sum(it.train_seconds for it in history) / 60:.1f})",
        *(f"- {line}" for line in noise_lines(snap)),
        "",
        markdown_inline(plot_failed) if plot_failed else "![progress](progress.png)",
        "",
        *holdout_section(history, cfg, best["iteration"]),
        *report_section(snap, cfg.metric),
        "## How it got there: every kept change",
        "",
    ]
    previous = None
    for it in history:
        if not it.kept:
            continue
        delta = "" if previous is None or it.value is None else f" ({it.value - previous:+.4f})"
        lines += [
            f"### Iteration {it.iteration}: {fmt(it.value)}{delta}",
            "",
            fenced(it.explanation.strip()),
            "",
        ]
        previous = it.value if it.value is not None else previous
    lines += [
        "## All experiments",
        "",
        f"| iter | status | {column} | runs | description |",
        "|---|---|---|---|---|",
    ]
    for it in history:
        text = markdown_inline(it.description)
        if it.reason and not it.kept:
            text += f" ({markdown_inline(it.reason[:120])})"
        runs = str(len(it.runs))
        if len(it.runs) > 1:
            runs += ": " + ", ".join(fmt(r.value) for r in it.runs)
        status = it.status + (f" ({plural(it.repairs, 'repair')})" if it.repairs else "")
        lines.append(f"| {it.iteration} | {status} | {fmt(it.value)} | {runs} | {text} |")
    lines += _timeline(store.strategies(), history, cfg)
    winner = next((it for it in history if it.iteration == best["iteration"]), None)
    if base and winner and winner.iteration != base.iteration:
        diff = unified_diff(base.train_py, winner.train_py)
        lines += ["", "## The best train.py against the baseline", "", fenced(diff, "diff")]
    return "\n".join(lines) + "\n"


def _timeline(strategies: list[Strategy], history: list[Iteration], cfg: Config) -> list[str]:
    """Each strategy version, what it said, and what the iterations under it achieved; the
    rejected strategist replies, one line each."""
    if not strategies:
        return []
    lines = ["", "## Strategy timeline", ""]
    for s in strategies:
        where = "before any iteration" if s.after_iteration < 0 else (
            f"after iteration {s.after_iteration}"
        )  # fmt: skip
        if s.version is None:
            reason = markdown_inline((s.reason or "")[:200])
            lines += [f"- {where} ({s.trigger}): reply rejected, the strategy stayed: {reason}", ""]
            continue
        result = tally(s.version, history, cfg).line()
        lines += [f"### Version {s.version}, {where} ({s.trigger}): {result}", ""]
        lines += [fenced(s.text.strip()), ""]
    return lines


def write_report(store: Store, folder: Path | None = None) -> tuple[Path, str | None]:
    """Writes report.md and progress.png (each whole or not at all) into folder, by default the
    run's own; returns report.md's path, and one line saying why progress.png could not be drawn
    (the report is written all the same, saying so where the picture would be) or None."""
    folder = folder or store.dir
    cfg = store.config()
    history = store.iterations()
    failed = None
    try:
        image = plot(history, cfg)
    except Exception as e:  # noqa: BLE001 - a picture that cannot be drawn never costs the report
        failed = one_line(f"progress.png could not be drawn: {type(e).__name__}: {e}")[:300]
        (folder / PLOT_NAME).unlink(missing_ok=True)  # not an older run's picture
    else:
        write_atomically(folder / PLOT_NAME, image)
    path = folder / REPORT_NAME
    write_atomically(path, markdown(store, history, cfg, failed).encode())
    return path, failed
