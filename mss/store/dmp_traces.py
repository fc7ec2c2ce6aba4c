"""The DMP's traces as stored: an append-only table read in chain order.

What a trace means and how the chain is hashed is `mss/dmp/traces.py`'s; here are
the statements, and the one dialect difference: appends are serialised so that the
chain never forks (on SQLite by the single writer's transaction, on PostgreSQL by
a transaction-level advisory lock taken before the head is read).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, select

from mss.store.models import dmp_trace_table
from mss.store.sql import RawStatement, Tx

CHAIN_LOCK = 7303640007
t = dmp_trace_table.c

# Every consultation runs these (plain SQL: see `RawStatement`)
_HEAD = RawStatement("SELECT hash FROM dmp_trace ORDER BY id DESC LIMIT 1")
_FIELDS = ("ins", "at", "actor_kind", "actor", "action", "mode", "document_id", "detail",
           "prev_hash", "hash")  # fmt: skip
_ADD = RawStatement(
    f"INSERT INTO dmp_trace ({', '.join(_FIELDS)}) VALUES ({', '.join('?' for _ in _FIELDS)})",
    [t[name] for name in _FIELDS],
    exact_binds=True,  # `at` stored as SQLAlchemy stores it: the chain's hashes read it back
)
_HAS = RawStatement("SELECT 1 FROM dmp_trace WHERE ins = ? AND actor = ? AND action = ? LIMIT 1")


def locked_head(tx: Tx) -> str | None:
    """The hash of the last trace (None: no trace yet), the chain held by this
    transaction until it ends, so that no other append comes in between."""
    if tx.dialect == "postgresql":
        tx.conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({CHAIN_LOCK})")
    head: str | None = _HEAD.scalar(tx.conn)
    return head


def add_trace(tx: Tx, row: dict[str, Any]) -> None:
    """Append a trace: `ins`, `at`, `actor_kind`, `actor`, `action`, `mode`,
    `document_id`, `detail`, `prev_hash`, `hash`."""
    _ADD.run(tx.conn, *(row[name] for name in _FIELDS))


def traces_of(conn: Connection, ins: str, limit: int) -> list[dict[str, Any]]:
    """The traces of one DMP, newest first (without their hashes)."""
    rows = conn.execute(
        select(t.id, t.at, t.actor_kind, t.actor, t.action, t.mode, t.document_id, t.detail)
        .where(t.ins == ins)
        .order_by(t.id.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in rows]


def has_trace(conn: Connection, ins: str, actor: str, action: str) -> bool:
    return _HAS.first(conn, ins, actor, action) is not None


def every_trace(conn: Connection, batch: int = 5000) -> Iterator[dict[str, Any]]:
    """Every trace in chain order, with its id and hashes, read `batch` at a time."""
    after = -1
    while True:
        rows = conn.execute(select(dmp_trace_table).where(t.id > after).order_by(t.id).limit(batch))
        chunk = rows.all()
        if not chunk:
            return
        for row in chunk:
            yield dict(row._mapping)
        after = chunk[-1].id


def last_trace(conn: Connection) -> tuple[int, str] | None:
    """The id and hash of the last trace (None: no trace yet)."""
    row = conn.execute(select(t.id, t.hash).order_by(t.id.desc()).limit(1)).first()
    return (int(row.id), str(row.hash)) if row is not None else None
