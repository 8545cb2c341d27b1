"""The run store's schema as an ordered list of migrations; `PRAGMA user_version` counts the
ones a store has had. A store from an older release is brought up to date when it is opened for
writing (each migration in its own transaction, with the version it reaches), and read through
an up-to-date copy in memory when it is opened read-only. New concepts get new tables, not more
columns squeezed into `iterations`.

To change the schema, append a function; never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

# The iteration columns of release 0.1.0 (schema 1). A store made before some of them existed
# gets them, empty, from the first migration.
V1_COLUMNS = (
    "value", "reason", "explanation", "train_py", "parent", "diff", "commit", "prompt",
    "raw_output", "agent_seconds", "train_seconds", "wall_seconds", "peak_memory_mb", "log_path",
    "started_at", "agent", "model", "tokens_in", "tokens_out", "tokens_cached", "cost_usd",
)  # fmt: skip


class SchemaError(Exception):
    """The store's schema is one this release cannot read."""


def columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f'PRAGMA table_info("{table}")')}


def _initial(db: sqlite3.Connection) -> None:
    """1: the settings (meta) and one row per iteration."""
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute(
        "CREATE TABLE IF NOT EXISTS iterations "
        "(iteration INTEGER PRIMARY KEY, status TEXT NOT NULL, finished_at REAL)"
    )
    have = columns(db, "iterations")
    for column in V1_COLUMNS:
        if column not in have:
            db.execute(f'ALTER TABLE iterations ADD COLUMN "{column}"')


# The strategy columns besides the key (after_iteration) and version.
STRATEGY_COLUMNS = (
    "trigger", "text", "reasoning", "reason", "reply", "prompt", "agent", "model", "seconds",
    "commit", "created_at", "tokens_in", "tokens_out", "tokens_cached", "cost_usd",
)  # fmt: skip


def _strategies(db: sqlite3.Connection) -> None:
    """The outer loop: a row per strategy (the run's initial one, each strategist call, one per
    point of the run), and the version each iteration ran under."""
    db.execute(
        "CREATE TABLE strategies "
        "(after_iteration INTEGER PRIMARY KEY, version INTEGER UNIQUE, "
        + ", ".join(f'"{column}"' for column in STRATEGY_COLUMNS)
        + ")"
    )
    db.execute("ALTER TABLE iterations ADD COLUMN strategy INTEGER")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_initial, _strategies]
SCHEMA_VERSION = len(MIGRATIONS)


def version(db: sqlite3.Connection) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


def check(db: sqlite3.Connection) -> int:
    """The store's schema version; SchemaError for one newer than this release knows."""
    found = version(db)
    if found > SCHEMA_VERSION:
        raise SchemaError(
            f"was written by a newer autoresearch (schema {found}; this release reads up to "
            f"{SCHEMA_VERSION}): upgrade autoresearch to open it"
        )
    return found


def migrate(db: sqlite3.Connection) -> list[int]:
    """Apply the migrations db lacks, each atomically with the version it reaches (autocommit
    connection). Returns the versions reached."""
    reached = []
    for number in range(check(db), SCHEMA_VERSION):
        db.execute("BEGIN IMMEDIATE")
        try:
            if version(db) == number:  # another process may have migrated it meanwhile
                MIGRATIONS[number](db)
                db.execute(f"PRAGMA user_version = {number + 1}")
                reached.append(number + 1)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return reached


def migrated_copy(db: sqlite3.Connection) -> sqlite3.Connection:
    """An up-to-date copy in memory of a store opened read-only (the file is not touched)."""
    copy = sqlite3.connect(":memory:", isolation_level=None)
    db.backup(copy)
    migrate(copy)
    return copy
