"""Promotions, suspicious keeps and the ablation in words: lines for `status`, a section for
report.md; both from `status --json` (verdicts.py)."""

from __future__ import annotations

from autoresearch.core.safe_text import markdown_inline
from autoresearch.core.text import fmt


def _signed(value: float | None) -> str:
    return "none" if value is None else f"{value:+.4f}"


def _values(values: list) -> str:
    return ", ".join(fmt(v) for v in values)


def promotion_line(p: dict) -> str:
    where = f" on {p['where']}" if p["where"] else ""
    verdict = "holds" if p["holds"] else f"does not hold ({p['reason']})"
    return (
        f"promotion at {p['budget_secs']:g}s{where}: iteration {p['best_iteration']} "
        f"{_signed(p['gain'])} over the baseline: {verdict}"
    )


def status_lines(snap: dict) -> list[str]:
    """What `status` says under its table: each promotion, each doubt, the ablation's gist."""
    lines = [promotion_line(p) for p in snap.get("promotions") or []]
    for flag in snap.get("suspicious") or []:
        lines += [f"suspicious: iteration {flag['iteration']}: {r}" for r in flag["reasons"]]
    ablation = snap.get("ablation")
    if ablation:
        parts = [
            f"{c['iteration']} {_signed(c['contribution'])}" if c["applies"] else
            f"{c['iteration']} (does not apply)"
            for c in ablation["changes"]
        ]  # fmt: skip
        lines.append(
            f"ablation of iteration {ablation['best_iteration']}: contribution of each keep: "
            + ", ".join(parts)
        )
    if snap.get("machine_cost_usd") is not None:
        lines.append(f"machines: ${snap['machine_cost_usd']:.2f} of the cost ([resources])")
    return lines


def report_section(snap: dict, metric: str) -> list[str]:
    """report.md's "Do the verdicts transfer?" section; none when there is nothing to say."""
    promotions, flags, ablation = (
        snap.get("promotions") or [], snap.get("suspicious") or [], snap.get("ablation")
    )  # fmt: skip
    if not (promotions or flags or ablation):
        return []
    lines = ["## Do the verdicts transfer?", ""]
    if promotions:
        lines += [
            "Promotion: the best and the baseline trained again at a longer budget, with "
            "the same seeds; *holds* when the loop's own test confirms the gain.",
            "",
            "| budget | best iteration | best runs | baseline runs | gain | holds | where |",
            "|---|---|---|---|---|---|---|",
        ]
        for p in promotions:
            holds = "yes" if p["holds"] else f"no: {markdown_inline(p['reason'] or '')}"
            lines.append(
                f"| {p['budget_secs']:g} s | {p['best_iteration']} | {_values(p['best_values'])} "
                f"| {_values(p['baseline_values'])} | {_signed(p['gain'])} | {holds} "
                f"| {markdown_inline(p['where'] or 'the run’s own')} |"
            )
        lines.append("")
    if flags:
        lines += ["Keeps worth a second look:", ""]
        for flag in flags:
            lines += [
                f"- iteration {flag['iteration']}: {markdown_inline(r)}" for r in flag["reasons"]
            ]
        lines.append("")
    if ablation:
        lines += [
            f"Ablation of iteration {ablation['best_iteration']} (its runs: "
            f"{_values(ablation['best_values'])}): each kept change reverted from it and trained "
            f"again; contribution = the best's mean {markdown_inline(metric)} minus the mean "
            "without the change (positive: it helps), ± its standard error.",
            "",
            "| keep | change | contribution | ± | runs without it |",
            "|---|---|---|---|---|",
        ]
        for c in ablation["changes"]:
            text = markdown_inline(c["description"] + (f" ({c['reason']})" if c["reason"] else ""))
            spread = "" if c["spread"] is None else f"{c['spread']:.4f}"
            lines.append(
                f"| {c['iteration']} | {text} | {_signed(c['contribution'])} | {spread} "
                f"| {_values(c['values'])} |"
            )
        lines.append("")
    return lines
