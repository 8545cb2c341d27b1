"""Small helpers for the text people read."""

from __future__ import annotations


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def fmt(value: float | None) -> str:
    """A metric value as people read it: four decimals, or "none"."""
    return "none" if value is None else f"{value:.4f}"
