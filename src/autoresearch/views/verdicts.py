"""The part of `status --json` (and so of the report, compare and the dashboard) that says whether
a run's verdicts transfer: its promotions, its last ablation, the keeps worth a second look, and
what its machines cost (estimate.py)."""

from __future__ import annotations

from dataclasses import asdict

from autoresearch.core.config import Config
from autoresearch.core.records import Iteration
from autoresearch.core.suspicion import flags
from autoresearch.loop.estimate import machine_cost
from autoresearch.store.store import Store
from autoresearch.store.verdict_store import ablation, promotions


def view(store: Store, cfg: Config, history: list[Iteration]) -> dict:
    changes = ablation(store)
    return {
        "promotions": [asdict(p) for p in promotions(store)],
        "ablation": None if not changes else {
            "best_iteration": changes[0].best_iteration,
            "best_values": changes[0].best_values,
            "budget_secs": changes[0].budget_secs,
            "changes": [asdict(c) for c in changes],
        },
        "suspicious": flags(history, cfg),
        "machine_cost_usd": machine_cost(cfg, history, store) if cfg.resources.usd_per_hour else None,
    }  # fmt: skip
