"""The store's SQLite file: opened safely (a foreign, empty or truncated file is refused and
left as it is), its errors in one line, text it cannot hold as TEXT, and atomic file writes."""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from pathlib import Path


class StoreError(Exception):
    """The run store cannot be opened or used."""


UNTOUCHED = "it was left as it is: restore it from a backup, or start a new run with --new"
_SQLITE_MAGIC = b"SQLite format 3\x00"


def _check_header(path: Path) -> None:
    """A missing, empty, foreign or truncated file, found before SQLite could misread it."""
    try:
        with open(path, "rb") as f:
            header = f.read(100)
            size = os.fstat(f.fileno()).st_size
    except OSError as err:
        raise StoreError(f"{path}: cannot be read: {err.strerror}") from None
    if not header:
        raise StoreError(f"{path}: is empty; {UNTOUCHED}")
    if not header.startswith(_SQLITE_MAGIC):
        raise StoreError(f"{path}: not an SQLite database; {UNTOUCHED}")
    if len(header) < 100:
        raise StoreError(f"{path}: is truncated ({size} bytes); {UNTOUCHED}")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    valid = header[24:28] == header[92:96]  # the page count is valid only when these agree
    if valid and size < pages * page_size and not _whole_with_wal(path):
        raise StoreError(f"{path}: is truncated ({size} of {pages * page_size} bytes); {UNTOUCHED}")


def _whole_with_wal(path: Path) -> bool:
    """A file shorter than its header says may still be whole: a checkpoint that a full disk cut
    short wrote the header, not the last pages, which are still in the write-ahead log (and a
    reader may look in the middle of any checkpoint). SQLite judges it: a read-only quick_check
    reads every page through the log. The index it makes beside a store it refuses is removed."""
    wal, index = (path.with_name(path.name + suffix) for suffix in ("-wal", "-shm"))
    if not wal.is_file() or wal.stat().st_size == 0:
        return False
    made = not index.exists()
    uri = "file:" + urllib.parse.quote(str(path.absolute())) + "?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True, timeout=30)
        try:
            whole = db.execute("PRAGMA quick_check").fetchall() == [("ok",)]
        finally:
            db.close()
    except sqlite3.Error:
        whole = False
    if made and not whole:
        index.unlink(missing_ok=True)
    return whole


def open_db(path: Path, readonly: bool) -> sqlite3.Connection:
    """A connection to an existing store. Read-only: opened as usual where the folder is
    writable (so closing it leaves no -wal/-shm files behind) but refusing writes; else
    SQLite's read-only, then immutable, mode (a read-only file system)."""
    _check_header(path)
    uri = "file:" + urllib.parse.quote(str(path.absolute()))
    if not readonly:
        modes = ["?mode=rw"]
    elif os.access(path.parent, os.W_OK) and os.access(path, os.W_OK):
        modes = ["?mode=rw", "?mode=ro"]
    else:
        modes = ["?mode=ro", "?mode=ro&immutable=1"]
    for mode in modes:
        try:
            db = sqlite3.connect(uri + mode, uri=True, timeout=30, isolation_level=None)
        except sqlite3.Error as err:
            raise StoreError(explain(path, err)) from None
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchall()
            db.execute("PRAGMA query_only=ON" if readonly else "PRAGMA synchronous=FULL")
            return db
        except sqlite3.Error as err:
            db.close()
            if mode == modes[-1]:
                raise StoreError(explain(path, err)) from None
    raise AssertionError("unreachable")  # pragma: no cover


def explain(path: Path, err: sqlite3.Error) -> str:
    text = str(err)
    if "disk is full" in text:
        return f"{path}: cannot be written: {text} (free some space, then run again)"
    if "readonly" in text or "read-only" in text:
        return f"{path}: cannot be written: {text}"
    return f"{path}: cannot be read ({text}); {UNTOUCHED}"


def to_sql(value):
    """Text SQLite cannot hold as TEXT (lone surrogates: undecodable bytes) is kept as a BLOB."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogatepass")
    return value


def from_sql(value):
    return value.decode("utf-8", "surrogatepass") if isinstance(value, bytes) else value


def write_atomically(path: Path, data: bytes) -> None:
    """path holds data, or what it held before: never a part (a full disk, a kill mid-write)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"cannot write {path}: {err.strerror or err}") from None
