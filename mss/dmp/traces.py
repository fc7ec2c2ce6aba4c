"""The DMP's traces: append-only and hash-chained (DOMAIN.md §5, "Every access and
deposit is traced").

Each trace carries the SHA-256 of the previous trace's hash and of its own
fields; `verify` walks the chain and reports any trace modified, deleted or
inserted. Appends are serialised (the writer's transaction on SQLite, an
advisory lock on PostgreSQL) so that the chain never forks. Deleting the most
recent traces leaves a shorter valid chain: `verify` prints the head hash, to
be kept elsewhere (a log, a ticket) and compared later.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, insert, select

from mss.store.db import Tx
from mss.store.models import dmp_trace_table, utcnow

GENESIS = "0" * 64
CHAIN_LOCK = 7303640007
t = dmp_trace_table.c


def digest(prev: str, row: dict[str, Any]) -> str:
    at = row["at"].astimezone(dt.UTC).isoformat(timespec="microseconds")
    fields = [
        prev, row["ins"], at, row["actor_kind"], row["actor"], row["action"], row["mode"] or "",
        row["document_id"], row["detail"] or "",
    ]  # fmt: skip
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()


def append(
    tx: Tx,
    ins: str,
    actor_kind: str,
    actor: str,
    action: str,
    *,
    mode: str = "",
    document_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> str:
    """Add a trace at the end of the chain; return its hash."""
    if tx.dialect == "postgresql":
        tx.conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({CHAIN_LOCK})")
    last = tx.conn.execute(select(t.hash).order_by(t.id.desc()).limit(1)).scalar()
    prev = last or GENESIS
    row: dict[str, Any] = {
        "ins": ins, "at": utcnow(), "actor_kind": actor_kind, "actor": actor, "action": action,
        "mode": mode, "document_id": document_id,
        "detail": json.dumps(detail, ensure_ascii=False, sort_keys=True) if detail else "",
    }  # fmt: skip
    row["prev_hash"] = prev
    row["hash"] = digest(prev, row)
    tx.conn.execute(insert(dmp_trace_table).values(**row))
    return str(row["hash"])


def history(conn: Connection, ins: str, limit: int = 500) -> list[dict[str, Any]]:
    """The traces of one DMP, newest first."""
    rows = conn.execute(
        select(t.at, t.actor_kind, t.actor, t.action, t.mode, t.document_id, t.detail)
        .where(t.ins == ins)
        .order_by(t.id.desc())
        .limit(limit)
    )
    return [_trace_dict(r) for r in rows]


def _trace_dict(r: Any) -> dict[str, Any]:
    return {
        "at": r.at.astimezone(dt.UTC).isoformat(),
        "actor_kind": r.actor_kind,
        "actor": r.actor,
        "action": r.action,
        "mode": r.mode or None,
        "document_id": r.document_id,
        "detail": json.loads(r.detail) if r.detail else None,
    }


def has_trace(conn: Connection, ins: str, actor: str, action: str) -> bool:
    found = conn.execute(
        select(t.id).where(t.ins == ins, t.actor == actor, t.action == action).limit(1)
    ).first()
    return found is not None


@dataclass
class Verification:
    traces: int = 0
    head: str = GENESIS
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _rows(conn: Connection, batch: int = 5000) -> Iterator[Any]:
    after = -1
    while True:
        rows = conn.execute(select(dmp_trace_table).where(t.id > after).order_by(t.id).limit(batch))
        chunk = rows.all()
        if not chunk:
            return
        yield from chunk
        after = chunk[-1].id


def verify(conn: Connection) -> Verification:
    """Walk the whole chain: every trace must extend the previous one and hash right."""
    result = Verification()
    prev = GENESIS
    for row in _rows(conn):
        result.traces += 1
        values = row._asdict()
        if row.prev_hash != prev:
            result.problems.append(
                f"trace {row.id}: does not follow the previous trace (one was deleted or inserted)"
            )
        if digest(row.prev_hash, values) != row.hash:
            result.problems.append(f"trace {row.id}: modified (its hash does not match its fields)")
        prev = row.hash
    result.head = prev
    return result
