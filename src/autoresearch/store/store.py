"""A run's store: SQLite for the records, a folder per iteration for people, git for the code.

An iteration counts as recorded once its row is committed; its files and git commit are written
before the row, so a crash in between leaves at worst an unrecorded iteration that is run again.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import asdict, fields
from pathlib import Path

from pydantic import ValidationError

from autoresearch.core.config import Config
from autoresearch.core.records import OK, Iteration, Strategy, TrainingRun, Usage
from autoresearch.core.safe_text import encode
from autoresearch.store import migrations, tracking
from autoresearch.store.layout import DB_NAME, LOG_NAME, is_run, runs_dir
from autoresearch.store.layout import attempt_dir as _attempt_dir
from autoresearch.store.layout import iteration_dir as _iteration_dir
from autoresearch.store.layout import run_dir as _run_dir
from autoresearch.store.sqlite import (
    UNTOUCHED,
    StoreError,
    explain,
    from_sql,
    open_db,
    to_sql,
    write_atomically,
)

_USAGE = ("tokens_in", "tokens_out", "tokens_cached", "cost_usd")
_COLUMNS = [f.name for f in fields(Iteration) if f.name not in ("usage", "runs")] + list(_USAGE)
_RUN_COLUMNS = [f.name for f in fields(TrainingRun)]
# Columns a history listing needs: not the prompts and raw outputs, which can be large.
_LIGHT = [c for c in _COLUMNS if c not in ("prompt", "raw_output", "diff")]
_STRATEGY = [f.name for f in fields(Strategy) if f.name != "usage"] + list(_USAGE)


def _names(columns) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def list_runs(workspace: Path) -> list[Path]:
    root = runs_dir(workspace)
    return sorted((p for p in root.glob("*") if is_run(p)), key=lambda p: p.name)


def new_run_id(workspace: Path) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    existing = {p.name for p in runs_dir(workspace).glob(f"{stamp}*")}
    run_id, n = stamp, 1
    while run_id in existing:
        n += 1
        run_id = f"{stamp}-{n}"
    return run_id


class Store:
    """A run's store. Opening one (`Store(dir)`) never creates or changes anything; a file that
    is not a readable run store is left as it is and reported in one line."""

    def __init__(self, run_dir: Path, readonly: bool = False):
        self.dir = run_dir
        self.path = run_dir / DB_NAME
        self.db = open_db(self.path, readonly)
        self._fast: sqlite3.Connection | None = None  # for what a power cut may lose (now())
        try:
            tables = {row[0] for row in self._query("SELECT name FROM sqlite_master")}
            if not {"meta", "iterations"} <= tables:
                raise StoreError(f"{self.path}: not an autoresearch run store; {UNTOUCHED}")
            self._bring_up_to_date(readonly)
            if self.get("config") is None:
                raise StoreError(f"{self.path}: has no run settings; {UNTOUCHED}")
        except BaseException:
            self.db.close()
            raise

    def _bring_up_to_date(self, readonly: bool) -> None:
        """A store from an older release is migrated (for writing) or read through a migrated
        copy in memory (read-only: the file is not touched)."""
        try:
            if migrations.check(self.db) == migrations.SCHEMA_VERSION:
                return
            if readonly:
                old, self.db = self.db, migrations.migrated_copy(self.db)
                old.close()
            else:
                migrations.migrate(self.db)
        except migrations.SchemaError as err:
            raise StoreError(f"{self.path}: {err}") from None
        except sqlite3.Error as err:
            raise StoreError(explain(self.path, err)) from None

    @classmethod
    def create(cls, run_dir: Path, config: dict) -> Store:
        """A new run's store, holding its settings."""
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / DB_NAME
        if path.exists():
            raise StoreError(f"{path}: already exists")
        try:
            db = sqlite3.connect(path, timeout=30, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                migrations.migrate(db)
                with db:
                    db.execute(
                        "INSERT INTO meta (key, value) VALUES ('config', ?)",
                        (json.dumps(config, allow_nan=False),),
                    )
            finally:
                db.close()
        except sqlite3.Error as err:
            raise StoreError(f"{path}: cannot be created: {err}") from None
        return cls(run_dir)

    @property
    def run_id(self) -> str:
        return self.dir.name

    def close(self) -> None:
        if self._fast is not None:
            self._fast.close()
        self.db.close()

    def _now(self, sql: str, params=()) -> list:
        """A statement about what goes on now (the training processes, the live phase), without
        waiting for the disk: a power cut that loses it also ended what it describes. (Records
        wait for the disk: PRAGMA synchronous=FULL.)"""
        if self._fast is None:
            self._fast = open_db(self.path, readonly=False)
            self._fast.execute("PRAGMA synchronous=OFF")
        try:
            return self._fast.execute(sql, params).fetchall()
        except sqlite3.Error as err:
            raise StoreError(explain(self.path, err)) from None

    def _query(self, sql: str, params=(), many: bool = False) -> list:
        """One statement; any SQLite failure (a damaged file, a full disk) is one line."""
        try:
            if many:
                with self.db:
                    self.db.executemany(sql, params)
                return []
            return self.db.execute(sql, params).fetchall()
        except sqlite3.Error as err:
            raise StoreError(explain(self.path, err)) from None

    # --- meta: the run's settings and state ---
    def get(self, key: str, default=None):
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        try:
            return json.loads(rows[0][0]) if rows else default
        except (TypeError, ValueError):
            raise StoreError(
                f"{self.path}: its '{key}' setting is unreadable; {UNTOUCHED}"
            ) from None

    def set(self, **items) -> None:
        self._query(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [(k, json.dumps(v)) for k, v in items.items()],
            many=True,
        )

    def config(self) -> Config:
        """The settings the run was started (or last resumed) with."""
        try:
            return Config.model_validate(self.get("config"))
        except ValidationError as err:
            problem = err.errors()[0]
            where = ".".join(str(p) for p in problem["loc"])
            raise StoreError(
                f"{self.path}: its run settings are unreadable ({where}: {problem['msg']}); "
                f"{UNTOUCHED}"
            ) from None

    def recorded(self) -> int:
        """How many iterations are recorded."""
        return self._query("SELECT count(*) FROM iterations")[0][0]

    # --- iterations ---
    def iteration_dir(self, n: int) -> Path:
        return _iteration_dir(self.dir, n)

    def run_dir(self, n: int, k: int) -> Path:
        """Where run k of iteration n keeps its log and predictions (the first: the iteration's)."""
        return _run_dir(self.dir, n, k)

    def record_run(self, n: int, k: int, run: TrainingRun) -> None:
        """Run k of iteration n, as soon as it is scored (before the iteration's row)."""
        row = {c: to_sql(getattr(run, c)) for c in _RUN_COLUMNS}
        log = to_sql(str(run.log_path)) if run.log_path else None
        row.update(metrics=json.dumps(run.metrics), log_path=log)
        row.update(iteration=n, run=k, finished_at=time.time())
        sql = f"INSERT INTO training_runs ({_names(row)}) VALUES ({', '.join('?' * len(row))})"
        try:
            with self.db:
                self.db.execute(sql, list(row.values()))
        except sqlite3.IntegrityError:
            raise StoreError(f"run {k} of iteration {n} is already recorded") from None
        except sqlite3.Error as err:
            raise StoreError(explain(self.path, err)) from None

    def runs(self, n: int | None = None) -> dict[int, list[TrainingRun]]:
        """The recorded training runs, in order, by iteration (of iteration n only, if given)."""
        where, params = ("WHERE iteration = ?", (n,)) if n is not None else ("", ())
        rows = self._query(
            f"SELECT iteration, run, {_names(_RUN_COLUMNS)} FROM training_runs {where} "
            "ORDER BY iteration, run",
            params,
        )
        found: dict[int, list[TrainingRun]] = {}
        for row in rows:
            values = dict(zip(_RUN_COLUMNS, map(from_sql, row[2:]), strict=True))
            values["metrics"] = json.loads(values["metrics"] or "{}")
            own = self.run_dir(row[0], row[1]) / LOG_NAME
            if values["log_path"] and own.is_file():  # where the store keeps it, if moved
                values["log_path"] = str(own)
            found.setdefault(row[0], []).append(TrainingRun(**values))
        return found

    def drop_runs(self, n: int) -> None:
        """Forget the runs of an unrecorded iteration whose proposal is not kept (pending)."""
        self._query("DELETE FROM training_runs WHERE iteration = ?", (n,))

    def keep_attempt(self, n: int, attempt: int, files: dict[str, str], outputs: bool) -> None:
        """Iteration n's attempt that crashed before repair `attempt`, kept in a folder of its
        own (layout.attempt_dir): files (its train.py, the repair's prompt and answer) and, with
        outputs, what its first run left in the iteration's folder (its log), moved there so that
        the repaired train.py's run starts afresh; written again if it is there already."""
        folder = _attempt_dir(self.dir, n, attempt)
        folder.mkdir(parents=True, exist_ok=True)
        if outputs:
            for path in self.iteration_dir(n).iterdir():
                if path.is_file():
                    path.replace(folder / path.name)
        for name, text in files.items():
            if text:
                write_atomically(folder / name, encode(text))

    # --- proposals in training: recorded so that a resume trains them without asking again ---
    def set_pending(self, it: Iteration, notes: list[str]) -> None:
        data = asdict(it)
        data.pop("runs")
        self._query(
            "INSERT OR REPLACE INTO pending VALUES (?, ?, ?)",
            (it.iteration, json.dumps(data), json.dumps(notes)),
        )

    def pending(self, n: int) -> tuple[Iteration, list[str]] | None:
        rows = self._query("SELECT proposal, notes FROM pending WHERE iteration = ?", (n,))
        if not rows:
            return None
        data = json.loads(rows[0][0])
        return Iteration(**{**data, "usage": Usage(**data["usage"])}), list(json.loads(rows[0][1]))

    def pending_numbers(self) -> list[int]:
        """The iterations proposed, valid and not recorded yet, oldest first."""
        return [row[0] for row in self._query("SELECT iteration FROM pending ORDER BY iteration")]

    # --- what is under way now: the training processes, the orchestrator's phase ---
    def set_training(self, n: int, k: int, pid: int | None, created: float | None) -> None:
        """Run k of iteration n trains (in process group pid, if it is on this machine)."""
        self._now("INSERT OR REPLACE INTO training VALUES (?, ?, ?, ?)", (n, k, pid, created))

    def trained(self, n: int, k: int) -> None:
        """Run k of iteration n no longer trains."""
        self._now("DELETE FROM training WHERE iteration = ? AND run = ?", (n, k))

    def training(self) -> list[tuple[int, int, int | None, float | None]]:
        """(iteration, run, pid, created) of each run training now (or when the run stopped)."""
        return self._query("SELECT iteration, run, pid, created FROM training ORDER BY 1, 2")

    def set_live(self, phase: dict | None) -> None:
        """What the orchestrator does now (None: nothing; read by status and the dashboard)."""
        if phase is None:
            self._now("DELETE FROM live")
        else:
            self._now("INSERT OR REPLACE INTO live VALUES (0, ?)", (json.dumps(phase),))

    def live(self) -> dict | None:
        rows = self._query("SELECT phase FROM live")
        return json.loads(rows[0][0]) if rows else None

    def record(self, it: Iteration) -> None:
        """Write the iteration's files, then its row (its runs are recorded already); the
        pending proposal is cleared with it. Refuses to record a number twice."""
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
                write_atomically(folder / name, encode(text))
        row = {c: to_sql(getattr(it, c)) for c in _COLUMNS if c not in _USAGE}
        row.update({k: getattr(it.usage, k) for k in _USAGE})
        row["finished_at"] = time.time()
        sql = f"INSERT INTO iterations ({_names(row)}) VALUES ({', '.join('?' * len(row))})"
        try:
            self.db.execute("BEGIN IMMEDIATE")  # the row and the proposal's end at once
            try:
                self.db.execute(sql, list(row.values()))
                self.db.execute("DELETE FROM pending WHERE iteration = ?", (it.iteration,))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        except sqlite3.IntegrityError:
            raise StoreError(f"iteration {it.iteration} is already recorded") from None
        except sqlite3.Error as err:
            raise StoreError(explain(self.path, err)) from None
        tracking.recorded(self, it)  # MLflow, where configured; never raises

    def iterations(self, full: bool = False) -> list[Iteration]:
        """Every recorded iteration, oldest first. full=False leaves out prompt, raw output, diff."""
        return self._load(_COLUMNS if full else _LIGHT, "ORDER BY iteration")

    def iteration(self, n: int) -> Iteration | None:
        """One recorded iteration, whole; None if it is not recorded."""
        found = self._load(_COLUMNS, "WHERE iteration = ?", (n,))
        return found[0] if found else None

    def _load(self, columns: list[str], where: str, params=()) -> list[Iteration]:
        rows = self._query(f"SELECT {_names(columns)} FROM iterations {where}", params)
        found = [_to_iteration(dict(zip(columns, map(from_sql, row), strict=True))) for row in rows]
        runs = self.runs(found[0].iteration if len(found) == 1 else None)
        for it in found:  # the log is where the store keeps it, also in a moved workspace
            it.runs = runs.get(it.iteration, [])
            own = self.iteration_dir(it.iteration) / LOG_NAME
            failed = [r.log_path for r in it.runs if r.status != OK and r.log_path]
            if failed:  # the log of the run that failed
                it.log_path = str(failed[0])
            elif it.log_path and own.is_file():
                it.log_path = str(own)
        return found

    # --- strategies (the outer loop) ---
    def record_strategy(self, strategy: Strategy) -> None:
        """One row per point of the run: a second call after the same iteration is refused."""
        row = {c: to_sql(getattr(strategy, c)) for c in _STRATEGY if c not in _USAGE}
        row.update({k: getattr(strategy.usage, k) for k in _USAGE})
        sql = f"INSERT INTO strategies ({_names(row)}) VALUES ({', '.join('?' * len(row))})"
        try:
            with self.db:
                self.db.execute(sql, list(row.values()))
        except sqlite3.IntegrityError:
            raise StoreError(
                f"a strategy after iteration {strategy.after_iteration} is already recorded"
            ) from None
        except sqlite3.Error as err:
            raise StoreError(explain(self.path, err)) from None

    def strategies(self, full: bool = False) -> list[Strategy]:
        """Every strategy and strategist call, oldest first. full=False: without the prompts and
        replies, which can be large."""
        columns = _STRATEGY if full else [c for c in _STRATEGY if c not in ("prompt", "reply")]
        rows = self._query(f"SELECT {_names(columns)} FROM strategies ORDER BY after_iteration")
        found = []
        for row in rows:
            values = dict(zip(columns, map(from_sql, row), strict=True))
            usage = Usage(*(values.pop(k) for k in _USAGE))
            found.append(Strategy(**values, usage=usage))
        return found


def _to_iteration(row: dict) -> Iteration:
    usage = Usage(*(row.pop(k) for k in _USAGE))
    usage.tokens_in, usage.tokens_out, usage.tokens_cached = (
        usage.tokens_in or 0,
        usage.tokens_out or 0,
        usage.tokens_cached or 0,
    )
    return Iteration(**row, usage=usage)
