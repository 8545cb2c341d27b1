"""Keep, discard or crash: the one decision of the loop, direction-aware."""

from __future__ import annotations

from autoresearch.config import Config
from autoresearch.experiment import OK, TIMEOUT, Outcome
from autoresearch.records import CRASH, DISCARD, KEEP


def decide(cfg: Config, outcome: Outcome, incumbent_value: float | None) -> tuple[str, str | None]:
    """(status, reason) for a trained experiment measured against the incumbent's value."""
    if outcome.status == TIMEOUT:
        return CRASH, f"timeout: {outcome.reason}"
    if outcome.status != OK or outcome.value is None:
        return CRASH, outcome.reason
    if cfg.better(outcome.value, incumbent_value, cfg.loop.min_improvement):
        return KEEP, None
    return DISCARD, None
