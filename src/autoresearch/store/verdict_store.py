"""A run store's promotions and ablations (their own tables, migrations.py 4): written by the
loop's end-of-run hook and `autoresearch ablate`, read by status, report, compare, the dashboard."""

from __future__ import annotations

import json
import time
from dataclasses import fields

from autoresearch.core.records import Ablated, Promotion
from autoresearch.store.store import Store

_PROMOTION = [f.name for f in fields(Promotion)]
_ABLATED = [f.name for f in fields(Ablated)]
_LISTS = ("best_values", "baseline_values", "values")
_FLAGS = ("holds", "applies")


def _names(columns: list[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _row(record, columns: list[str]) -> list:
    values = []
    for c in columns:
        value = getattr(record, c)
        values.append(json.dumps(value) if c in _LISTS else value)
    return values


def _read(cls, columns: list[str], row) -> object:
    values = dict(zip(columns, row, strict=True))
    for c in columns:
        if c in _LISTS:
            values[c] = json.loads(values[c])
        elif c in _FLAGS:
            values[c] = bool(values[c])
    return cls(**values)


def record_promotion(store: Store, promotion: Promotion) -> None:
    """One promotion of a best at one budget (a second one replaces it)."""
    promotion.created_at = promotion.created_at or time.time()
    sql = (
        f"INSERT OR REPLACE INTO promotions ({_names(_PROMOTION)}) "
        f"VALUES ({', '.join('?' * len(_PROMOTION))})"
    )
    store._query(sql, [_row(promotion, _PROMOTION)], many=True)


def promotions(store: Store) -> list[Promotion]:
    """Every promotion of the run, oldest first."""
    rows = store._query(f"SELECT {_names(_PROMOTION)} FROM promotions ORDER BY created_at")
    return [_read(Promotion, _PROMOTION, row) for row in rows]


def record_ablation(store: Store, changes: list[Ablated]) -> None:
    """An ablation of one best: replaces what an earlier ablation of it found."""
    now = time.time()
    for change in changes:
        change.created_at = change.created_at or now
    sql = (
        f"INSERT OR REPLACE INTO ablations ({_names(_ABLATED)}) "
        f"VALUES ({', '.join('?' * len(_ABLATED))})"
    )
    store._query(sql, [_row(change, _ABLATED) for change in changes], many=True)


def ablation(store: Store) -> list[Ablated]:
    """The kept changes of the latest ablated best, in the order they were kept."""
    rows = store._query(
        f"SELECT {_names(_ABLATED)} FROM ablations WHERE best_iteration = "
        "(SELECT best_iteration FROM ablations ORDER BY created_at DESC LIMIT 1) "
        "ORDER BY iteration"
    )
    return [_read(Ablated, _ABLATED, row) for row in rows]
