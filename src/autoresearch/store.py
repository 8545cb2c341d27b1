"""A run's store: SQLite for the records, a folder per iteration for people, git for the code.

An iteration counts as recorded once its row is committed; its files and git commit are written
before the row, so a crash in between leaves at worst an unrecorded iteration that is run again.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import fields
from pathlib import Path

from autoresearch.records import BASELINE, KEEP, Iteration, Usage
from autoresearch.workspace import STATE_DIR

RUNS = "runs"
_USAGE = ("tokens_in", "tokens_out", "tokens_cached", "cost_usd")
_COLUMNS = [f.name for f in fields(Iteration) if f.name != "usage"] + list(_USAGE)
_TYPES = {"iteration": "INTEGER PRIMARY KEY", "status": "TEXT NOT NULL"}
# Columns a history listing needs: not the prompts and raw outputs, which can be large.
_LIGHT = [c for c in _COLUMNS if c not in ("prompt", "raw_output", "diff")]
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS iterations ("
    + ", ".join(f'"{c}" {_TYPES.get(c, "")}'.strip() for c in _COLUMNS)
    + ", finished_at REAL);"
)


def _names(columns) -> str:
    return ", ".join(f'"{c}"' for c in columns)


class StoreError(Exception):
    """The run store cannot be opened or used."""


def runs_dir(workspace: Path) -> Path:
    return workspace / STATE_DIR / RUNS


def list_runs(workspace: Path) -> list[Path]:
    root = runs_dir(workspace)
    return sorted((p for p in root.glob("*") if (p / "run.db").is_file()), key=lambda p: p.name)


def new_run_id(workspace: Path) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    existing = {p.name for p in runs_dir(workspace).glob(f"{stamp}*")}
    run_id, n = stamp, 1
    while run_id in existing:
        n += 1
        run_id = f"{stamp}-{n}"
    return run_id


class Store:
    def __init__(self, run_dir: Path):
        self.dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(run_dir / "run.db", timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
            self._add_new_columns()
        except sqlite3.Error as err:
            raise StoreError(f"{run_dir / 'run.db'}: {err}") from None

    def _add_new_columns(self) -> None:
        """A run made before a column existed gets it (empty) on open."""
        have = {row[1] for row in self.db.execute("PRAGMA table_info(iterations)")}
        for column in _COLUMNS:
            if column not in have:
                self.db.execute(f'ALTER TABLE iterations ADD COLUMN "{column}"')

    @property
    def run_id(self) -> str:
        return self.dir.name

    def close(self) -> None:
        self.db.close()

    # --- meta: the run's settings and state ---
    def get(self, key: str, default=None):
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set(self, **items) -> None:
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [(k, json.dumps(v)) for k, v in items.items()],
            )

    # --- iterations ---
    def iteration_dir(self, n: int) -> Path:
        return self.dir / "iterations" / f"{n:04d}"

    def record(self, it: Iteration) -> None:
        """Write the iteration's files, then its row. Refuses to record a number twice."""
        folder = self.iteration_dir(it.iteration)
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in [
            ("train.py", it.train_py),
            ("diff.patch", it.diff),
            ("explanation.md", it.explanation),
            ("prompt.md", it.prompt),
            ("agent_output.txt", it.raw_output),
        ]:
            if text:
                _write_durably(folder / name, text)
        row = {c: getattr(it, c) for c in _COLUMNS if c not in _USAGE}
        row.update({k: getattr(it.usage, k) for k in _USAGE})
        row["finished_at"] = time.time()
        try:
            with self.db:
                self.db.execute(
                    f"INSERT INTO iterations ({_names(row)}) VALUES ({', '.join('?' * len(row))})",
                    list(row.values()),
                )
        except sqlite3.IntegrityError:
            raise StoreError(f"iteration {it.iteration} is already recorded") from None

    def iterations(self, full: bool = False) -> list[Iteration]:
        """Every recorded iteration, oldest first. full=False leaves out prompt, raw output, diff."""
        columns = _COLUMNS if full else _LIGHT
        rows = self.db.execute(
            f"SELECT {_names(columns)} FROM iterations ORDER BY iteration"
        ).fetchall()
        return [_to_iteration(dict(zip(columns, row, strict=True))) for row in rows]


def _to_iteration(row: dict) -> Iteration:
    usage = Usage(*(row.pop(k) for k in _USAGE))
    usage.tokens_in, usage.tokens_out, usage.tokens_cached = (
        usage.tokens_in or 0,
        usage.tokens_out or 0,
        usage.tokens_cached or 0,
    )
    return Iteration(**row, usage=usage)


def _write_durably(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def incumbent(history: list[Iteration]) -> Iteration | None:
    """The iteration new proposals start from: the last keep, else the baseline."""
    for it in reversed(history):
        if it.status in (KEEP, BASELINE):
            return it
    return history[0] if history else None
