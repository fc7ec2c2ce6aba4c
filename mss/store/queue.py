"""The durable outbound queue: one row per recipient to relay to another operator.

The relay runner (`delivery/outbound.py`) claims due rows with a lease (so that
several processes on one PostgreSQL never send the same row twice at once),
sends, and records the outcome. Times are Unix seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, and_, insert, select, update

from mss.store.db import Tx
from mss.store.models import QueueStatus, relay_queue_table

q = relay_queue_table


@dataclass(frozen=True, slots=True)
class QueuedRecipient:
    rcpt_to: str
    domain: str
    notify: str | None = None
    orcpt: str | None = None


@dataclass(frozen=True, slots=True)
class QueueEntry:
    id: int
    blob_id: int
    queue_id: str
    mail_from: str
    rcpt_to: str
    domain: str
    notify: str | None
    orcpt: str | None
    ret: str | None
    envid: str | None
    status: str
    attempts: int
    next_attempt: int
    expires: int
    created: int
    updated: int
    last_error: str | None


_COLUMNS = (
    q.c.id, q.c.blob_id, q.c.queue_id, q.c.mail_from, q.c.rcpt_to, q.c.domain, q.c.notify,
    q.c.orcpt, q.c.ret, q.c.envid, q.c.status, q.c.attempts, q.c.next_attempt, q.c.expires,
    q.c.created, q.c.updated, q.c.last_error,
)  # fmt: skip


def enqueue(
    tx: Tx,
    *,
    blob_id: int,
    queue_id: str,
    mail_from: str,
    recipients: Sequence[QueuedRecipient],
    ret: str | None,
    envid: str | None,
    now: int,
    expires: int,
) -> None:
    tx.conn.execute(
        insert(q),
        [
            {
                "blob_id": blob_id,
                "queue_id": queue_id,
                "mail_from": mail_from,
                "rcpt_to": r.rcpt_to,
                "domain": r.domain,
                "notify": r.notify,
                "orcpt": r.orcpt,
                "ret": ret,
                "envid": envid,
                "status": QueueStatus.QUEUED.value,
                "attempts": 0,
                "next_attempt": now,
                "expires": expires,
                "created": now,
                "updated": now,
            }
            for r in recipients
        ],
    )


def due_ids(conn: Connection, now: int, limit: int) -> list[int]:
    rows = conn.execute(
        select(q.c.id)
        .where(q.c.status == QueueStatus.QUEUED.value, q.c.next_attempt <= now)
        .order_by(q.c.next_attempt, q.c.id)
        .limit(limit)
    )
    return [row.id for row in rows]


def claim(tx: Tx, ids: Sequence[int], now: int, lease: int) -> list[QueueEntry]:
    """Lease due rows: push their next attempt `lease` seconds away; return those won."""
    if not ids:
        return []
    won = tx.conn.execute(
        update(q)
        .where(
            and_(
                q.c.id.in_(list(ids)),
                q.c.status == QueueStatus.QUEUED.value,
                q.c.next_attempt <= now,
            )
        )
        .values(next_attempt=now + lease, updated=now)
        .returning(q.c.id)
    ).all()
    won_ids = [row.id for row in won]
    if not won_ids:
        return []
    rows = tx.conn.execute(select(*_COLUMNS).where(q.c.id.in_(won_ids)).order_by(q.c.id))
    return [QueueEntry(**row._mapping) for row in rows]


def mark_sent(tx: Tx, ids: Sequence[int], now: int) -> None:
    tx.conn.execute(
        update(q)
        .where(q.c.id.in_(list(ids)))
        .values(
            status=QueueStatus.SENT.value, attempts=q.c.attempts + 1, updated=now, last_error=None
        )
    )


def mark_retry(tx: Tx, entry_id: int, now: int, next_attempt: int, error: str) -> None:
    tx.conn.execute(
        update(q)
        .where(q.c.id == entry_id)
        .values(attempts=q.c.attempts + 1, next_attempt=next_attempt, updated=now, last_error=error)
    )


def mark_failed(tx: Tx, entry_id: int, now: int, error: str) -> None:
    tx.conn.execute(
        update(q)
        .where(q.c.id == entry_id)
        .values(
            status=QueueStatus.FAILED.value,
            attempts=q.c.attempts + 1,
            updated=now,
            last_error=error,
        )
    )


def list_entries(conn: Connection, statuses: Sequence[str] | None = None) -> list[QueueEntry]:
    query = select(*_COLUMNS).order_by(q.c.id)
    if statuses:
        query = query.where(q.c.status.in_(list(statuses)))
    return [QueueEntry(**row._mapping) for row in conn.execute(query)]


def retry_now(tx: Tx, ids: Sequence[int] | None, now: int) -> int:
    """Make queued rows due now (all of them when `ids` is None)."""
    query = update(q).where(q.c.status == QueueStatus.QUEUED.value)
    if ids is not None:
        query = query.where(q.c.id.in_(list(ids)))
    return int(tx.conn.execute(query.values(next_attempt=now, updated=now)).rowcount)


def drop(tx: Tx, ids: Sequence[int], now: int) -> int:
    """Give up on queued rows without a DSN (an administrator's decision)."""
    return int(
        tx.conn.execute(
            update(q)
            .where(q.c.id.in_(list(ids)), q.c.status == QueueStatus.QUEUED.value)
            .values(status=QueueStatus.DROPPED.value, updated=now, last_error="dropped by admin")
        ).rowcount
    )
