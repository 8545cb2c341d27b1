"""What the benchmarks share: a fresh Fashion-MNIST workspace in a temporary folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from autoresearch.store import workspace


def fresh_workspace(tmp: Path, data_dir: str | None) -> Path:
    """A template workspace under tmp, training with this interpreter; the converted data is
    cached under tmp too, read from data_dir when given."""
    os.environ["AUTORESEARCH_CACHE_DIR"] = str(Path(tmp) / "cache")
    if data_dir:
        os.environ["AUTORESEARCH_DATA_DIR"] = data_dir
    ws = Path(tmp) / "ws"
    workspace.init(ws, "fashion-mnist", sys.executable)
    return ws
