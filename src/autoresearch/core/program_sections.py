"""program.md as its fixed part (goal, rules) and its `## Strategy` section, the one part the
strategist may rewrite; and the check of a strategist's reply.

A section runs from its heading to the next heading of level 1 or 2; headings inside fenced code
blocks (a `# comment` in a Python snippet) are text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

STRATEGY_HEADING = "## Strategy"
NO_STRATEGY = "No strategy yet: try one idea per iteration, and learn from the results."
MIN_STRATEGY_CHARS, MAX_STRATEGY_CHARS = 40, 8000
_HEADING = re.compile(r"^ {0,3}(#{1,2})[ \t]+(.*?)[ \t#]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


class Rejected(Exception):
    """A strategist's reply that cannot become the strategy: one line saying why."""


def _headings(lines: list[str]) -> list[tuple[int, str]]:
    """(line number, heading text) of each level-1/2 heading outside fenced code."""
    found, fence = [], None
    for number, line in enumerate(lines):
        opened = _FENCE.match(line)
        if opened:
            fence = None if fence == opened.group(1) else (fence or opened.group(1))
            continue
        heading = _HEADING.match(line)
        if fence is None and heading:
            found.append((number, f"{heading.group(1)} {heading.group(2)}"))
    return found


def _is_strategy(heading: str) -> bool:
    return heading.lower() == STRATEGY_HEADING.lower()


@dataclass
class Program:
    """program.md split around its strategy section."""

    before: str  # everything up to and including the `## Strategy` heading line
    strategy: str  # the section's body
    after: str  # the sections after it ("" when it is the last)
    headings: list[str]  # the fixed part's headings

    @classmethod
    def parse(cls, text: str) -> Program:
        """A program.md with no strategy section gets one, at its end, saying there is none."""
        lines = text.splitlines(keepends=True)
        headings = _headings(lines)
        start = next((n for n, heading in headings if _is_strategy(heading)), None)
        fixed = [heading for _, heading in headings if not _is_strategy(heading)]
        if start is None:
            head = text.rstrip() + "\n\n" if text.strip() else ""
            return cls(f"{head}{STRATEGY_HEADING}\n", NO_STRATEGY + "\n", "", fixed)
        end = next((n for n, _ in headings if n > start), len(lines))
        return cls(
            "".join(lines[: start + 1]), "".join(lines[start + 1 : end]), "".join(lines[end:]),
            fixed,
        )  # fmt: skip

    def render(self, strategy: str | None = None) -> str:
        """program.md with this strategy (None: its own, exactly as it was)."""
        if strategy is None:
            return self.before + self.strategy + self.after
        body = strategy.strip() + "\n"
        return self.before + body + ("\n" + self.after if self.after else "")


def parse_reply(reply: str, program: Program, current: str) -> tuple[str, str]:
    """(reasoning, strategy) from a reply that is free reasoning, then `## Strategy` and the new
    section. Rejected: no such section, an empty, too short or too long one, one that is the
    current strategy, or a reply that rewrites another section of program.md."""
    lines = reply.splitlines(keepends=True)
    headings = _headings(lines)
    start = next((n for n, heading in headings if _is_strategy(heading)), None)
    if start is None:
        raise Rejected(f"the reply has no `{STRATEGY_HEADING}` heading (outside code blocks)")
    fixed = {heading.lower() for heading in program.headings}
    touched = [h for n, h in headings if n > start or (n < start and h.lower() in fixed)]
    if touched:
        raise Rejected(
            f"the reply rewrites {', '.join(f'`{h}`' for h in touched[:3])} besides the strategy; "
            "the goal and rules of program.md are fixed"
        )
    reasoning = "".join(lines[:start]).strip()
    strategy = "".join(lines[start + 1 :]).strip()
    if not strategy:
        raise Rejected("the strategy section of the reply is empty")
    if len(strategy) < MIN_STRATEGY_CHARS:
        raise Rejected(f"the strategy is too short to use ({len(strategy)} characters)")
    if len(strategy) > MAX_STRATEGY_CHARS:
        raise Rejected(
            f"the strategy is too long ({len(strategy)} characters; at most {MAX_STRATEGY_CHARS})"
        )
    if strategy == current.strip():
        raise Rejected("the strategy is the current one, unchanged")
    return reasoning, strategy
