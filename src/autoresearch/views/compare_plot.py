"""compare.png: every run's best so far against the iteration, and against the cumulative agent
cost when the runs spent money."""

from __future__ import annotations

from autoresearch.core.safe_text import one_line
from autoresearch.views.compare import Comparison
from autoresearch.views.plotting import literal, png


def figure(cmp: Comparison):
    """The figure (matplotlib, Agg): one step line per run on each panel. Runs whose cost is
    unknown are left out of the cost panel, and its legend says so."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    panels = 2 if cmp.has_costs else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 4.5), dpi=110, squeeze=False)
    by_iteration = axes[0][0]
    for r in cmp.runs:
        points = [(n, b) for n, b in enumerate(r.best_so_far) if b is not None]
        label = one_line(f"{r.run} ({r.agent}, {r.budget_secs:g} s, {r.context})")
        if points:
            by_iteration.step(
                *zip(*points, strict=True), where="post", label=label, lw=1.4, marker="o", ms=3
            )
    by_iteration.xaxis.set_major_locator(MaxNLocator(integer=True))
    by_iteration.set_xlabel("iteration")
    by_iteration.set_ylabel(f"best {one_line(cmp.metric)} so far ({cmp.direction})")
    if panels == 2:
        by_cost = axes[0][1]
        for r in cmp.runs:
            if r.cumulative_cost is None:
                continue
            points = [
                (c, b)
                for c, b in zip(r.cumulative_cost, r.best_so_far, strict=True)
                if b is not None
            ]
            if points:
                by_cost.step(
                    *zip(*points, strict=True), where="post", label=one_line(r.run), lw=1.4
                )
        unknown = [r.run for r in cmp.runs if r.cumulative_cost is None]
        if unknown:
            by_cost.plot([], [], " ", label=one_line(f"cost unknown: {', '.join(unknown)}"))
        by_cost.set_xlabel("cumulative agent cost ($)")
    for ax in axes[0]:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=8)
    literal(fig)  # run, agent and metric names are text, never markup
    fig.tight_layout()
    return fig


def plot(cmp: Comparison) -> bytes:
    """compare.png's bytes."""
    return png(figure(cmp))
