"""The prompts' templates (autoresearch/prompts/*.txt, string.Template), read once: they ship
with the package."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from string import Template

PROMPTS = Path(__file__).parents[1] / "prompts"  # autoresearch/prompts


@cache
def template(name: str) -> Template:
    return Template((PROMPTS / name).read_text())


def fenced(intro: str, lines: list[str], lang: str = "") -> list[str]:
    """intro, then lines in a fenced block (nothing when there are no lines)."""
    return [intro, f"```{lang}", *lines, "```"] if lines else []
