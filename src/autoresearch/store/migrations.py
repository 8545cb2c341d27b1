"""The run store's schema as an ordered list of migrations; `PRAGMA user_version` counts the
ones a store has had. A store from an older release is brought up to date when it is opened for
writing (each migration in its own transaction, with the version it reaches), and read through
an up-to-date copy in memory when it is opened read-only. New concepts get new tables, not more
columns squeezed into `iterations`.

To change the schema, append a function; never edit one that has shipped.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

from autoresearch.core.records import CRASH, INVALID, OK

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


def _training_runs(db: sqlite3.Connection) -> None:
    """2: the training runs of each iteration (seed, score, other scores, log), one row each,
    written as each finishes. An older run's iterations get their one run each; its settings
    get what it ran with (one run per iteration, no confirmation, decisions on every label), so
    that it resumes as it started."""
    db.execute(
        "CREATE TABLE training_runs (iteration INTEGER NOT NULL, run INTEGER NOT NULL, "
        "seed INTEGER, status TEXT NOT NULL, value REAL, metrics TEXT NOT NULL DEFAULT '{}', "
        "reason TEXT, train_seconds REAL, wall_seconds REAL, peak_memory_mb REAL, log_path, "
        "finished_at REAL, PRIMARY KEY (iteration, run))"
    )
    db.execute(
        "INSERT INTO training_runs (iteration, run, status, value, reason, train_seconds, "
        "wall_seconds, peak_memory_mb, log_path, finished_at) "
        "SELECT iteration, 0, CASE WHEN value IS NULL THEN ? ELSE ? END, value, "
        "CASE WHEN value IS NULL THEN reason END, train_seconds, train_seconds, peak_memory_mb, "
        "log_path, finished_at FROM iterations WHERE status != ? "
        "AND (value IS NOT NULL OR log_path IS NOT NULL)",
        (CRASH, OK, INVALID),
    )
    row = db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
    if row is not None:
        config = json.loads(row[0])
        config.setdefault("holdout", False)
        config.setdefault("loop", {}).setdefault("noise_runs", 1)
        config["loop"].setdefault("confirm_runs", 0)
        db.execute("UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(config),))


# The strategy columns besides the key (after_iteration) and version.
STRATEGY_COLUMNS = (
    "trigger", "text", "reasoning", "reason", "reply", "prompt", "agent", "model", "seconds",
    "commit", "created_at", "tokens_in", "tokens_out", "tokens_cached", "cost_usd",
)  # fmt: skip


def _strategies(db: sqlite3.Connection) -> None:
    """3: the outer loop: a row per strategy (the run's initial one, each strategist call, one per
    point of the run), and the version each iteration ran under. An older run's settings get the
    strategist off, as it ran."""
    db.execute(
        "CREATE TABLE strategies "
        "(after_iteration INTEGER PRIMARY KEY, version INTEGER UNIQUE, "
        + ", ".join(f'"{column}"' for column in STRATEGY_COLUMNS)
        + ")"
    )
    db.execute("ALTER TABLE iterations ADD COLUMN strategy INTEGER")
    row = db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
    if row is not None:
        config = json.loads(row[0])
        config.setdefault("strategist", {"agent": "none"})
        db.execute("UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(config),))


def _in_flight(db: sqlite3.Connection) -> None:
    """4: what a run has under way, out of `meta` into tables of their own: the proposals stored
    and not recorded yet (pending), the training processes running now (training), and what the
    orchestrator is doing (live, one row). An older store's entries move over (a release before
    parallel runs kept a single pending proposal, and a single training process)."""
    db.execute(
        "CREATE TABLE pending (iteration INTEGER PRIMARY KEY, proposal TEXT NOT NULL, "
        "notes TEXT NOT NULL)"
    )
    db.execute(
        "CREATE TABLE training (iteration INTEGER NOT NULL, run INTEGER NOT NULL, pid INTEGER, "
        "created REAL, PRIMARY KEY (iteration, run))"
    )
    db.execute("CREATE TABLE live (id INTEGER PRIMARY KEY CHECK (id = 0), phase TEXT NOT NULL)")
    meta = dict(db.execute("SELECT key, value FROM meta WHERE key IN ('pending', 'inflight')"))
    pending = json.loads(meta.get("pending") or "null") or {}
    if "iteration" in pending:  # {"iteration": ..., "notes": ...}
        pending = {str(pending["iteration"]["iteration"]): pending}
    for n, entry in pending.items():
        db.execute(
            "INSERT INTO pending VALUES (?, ?, ?)",
            (int(n), json.dumps(entry["iteration"]), json.dumps(entry["notes"])),
        )
    inflight = json.loads(meta.get("inflight") or "null")
    if inflight and inflight.get("pid"):
        db.execute(
            "INSERT INTO training VALUES (?, 0, ?, ?)",
            (inflight["iteration"], inflight["pid"], inflight.get("created")),
        )
    db.execute("DELETE FROM meta WHERE key IN ('pending', 'inflight', 'live')")


def _verdicts(db: sqlite3.Connection) -> None:
    """5: whether verdicts transfer: the promotions of a run's best to a longer budget, and the
    ablation of each kept change (`autoresearch ablate`); values as JSON lists."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS promotions (best_iteration INTEGER NOT NULL, budget_secs REAL NOT NULL, "
        "best_values TEXT NOT NULL, baseline_values TEXT NOT NULL, gain REAL, holds INTEGER, "
        'reason TEXT, "where" TEXT, after_iteration INTEGER, seconds REAL, created_at REAL, '
        "PRIMARY KEY (best_iteration, budget_secs))"
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS ablations (best_iteration INTEGER NOT NULL, iteration INTEGER NOT NULL, "
        'description TEXT, applies INTEGER, "values" TEXT NOT NULL, best_values TEXT NOT NULL, '
        "contribution REAL, spread REAL, reason TEXT, budget_secs REAL, created_at REAL, "
        "PRIMARY KEY (best_iteration, iteration))"
    )


def _search(db: sqlite3.Connection) -> None:
    """6: the search (search.py): a combination's second parent, and how many repairs an
    iteration's crash took; an older run's iterations took none."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(iterations)")}
    if "second_parent" not in columns:  # a store made by hand at an older version may have it
        db.execute("ALTER TABLE iterations ADD COLUMN second_parent INTEGER")
    if "repairs" not in columns:
        db.execute("ALTER TABLE iterations ADD COLUMN repairs INTEGER NOT NULL DEFAULT 0")


def _failures(db: sqlite3.Connection) -> None:
    """7: what each crashed training run's crash was (records.EXCEPTION...), which decides
    whether its iteration is repaired; an older run's crashes are of no known kind."""
    if "failure" not in columns(db, "training_runs"):
        db.execute("ALTER TABLE training_runs ADD COLUMN failure TEXT")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _initial, _training_runs, _strategies, _in_flight, _verdicts, _search, _failures,
]  # fmt: skip
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
