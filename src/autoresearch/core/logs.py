"""The end of a log (a training's, while or after it runs), read from its end: never the whole
file, however large it grew."""

from __future__ import annotations

from pathlib import Path

TAIL_BYTES = 16_384  # how much of a log's end is read


def tail_lines(path: str | Path | None, count: int) -> list[str]:
    """The last `count` non-empty lines of the log at path (right-stripped); [] when there is
    none or it cannot be read."""
    if not path:
        return []
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - TAIL_BYTES))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line.rstrip() for line in text.splitlines() if line.strip()][-count:]
