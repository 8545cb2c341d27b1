"""The report's view of the hidden holdout: the best iteration's decision and holdout scores side
by side, the gap between them (how much picking the best of many on the decision data flatters
it), and the kept trajectory on both."""

from __future__ import annotations

from autoresearch.core.config import Config
from autoresearch.core.records import HOLDOUT_PREFIX, Iteration
from autoresearch.core.safe_text import markdown_inline
from autoresearch.core.text import fmt


def section(history: list[Iteration], cfg: Config, best: int | None) -> list[str]:
    """Markdown lines; none when the task scores no holdout."""
    name = HOLDOUT_PREFIX + cfg.metric
    kept = [it for it in history if it.kept and it.value is not None]
    winner = next((it for it in kept if it.iteration == best), None)
    if winner is None or name not in winner.metrics:
        return []
    base = kept[0]
    metric, hidden = markdown_inline(cfg.metric), markdown_inline(name)
    sign = 1 if cfg.direction == "maximize" else -1
    gap = winner.value - winner.metrics[name]
    lines = [
        "## Decision and holdout",
        "",
        f"Decisions use {metric} alone; {hidden} is scored on data no decision used and is "
        "never shown to the agent. The gap between them at the best iteration is how much "
        "choosing the best of many experiments on the decision data flatters it (plus noise).",
        "",
        f"| iteration | {metric} (decision) | {hidden} (holdout) | decision - holdout |",
        "|---|---|---|---|",
    ]
    for it in kept:
        other = it.metrics.get(name)
        delta = "" if other is None else f"{it.value - other:+.4f}"
        mark = " (best)" if it is winner else ""
        lines.append(f"| {it.iteration}{mark} | {fmt(it.value)} | {fmt(other)} | {delta} |")
    lines += ["", f"- best iteration {winner.iteration}: {metric} {fmt(winner.value)}, "
              f"{hidden} {fmt(winner.metrics[name])}, gap {gap:+.4f}"]  # fmt: skip
    if winner is not base and name in base.metrics:
        seen = sign * (winner.value - base.value)
        real = sign * (winner.metrics[name] - base.metrics[name])
        lines.append(
            f"- improvement over the baseline: {seen:+.4f} on the decision data, {real:+.4f} "
            f"on the holdout (selection bias about {seen - real:+.4f})"
        )
    return [*lines, ""]
