"""The outbox: work to do after a commit, durable, leased, retried, dead-lettered.

Whatever must happen after a message or a document is committed — relay it to
another operator, deposit its documents in the DMP, send an MDN, notify a patient —
is a row of `outbox`, added in the very transaction that causes it (`add`), so
that a crash can never lose it nor do it without its cause. The runner
(`store/runner.py`) then:

- claims due rows with a lease (`claim`): the row's `due_at` moves to the end of
  the lease and its `attempts` grows, in one statement — `FOR UPDATE SKIP LOCKED`
  on PostgreSQL, so several processes and machines never claim one row at once;
  under SQLite's single writer the statement is atomic by itself. A process killed
  while it works on a row leaves it pending: it is claimed again once the lease ends.
- finishes each claimed row (`finish`): done, failed for good (the handler dealt
  with it, e.g. by a DSN), retried later (exponential backoff with jitter), or
  dead-lettered after too many attempts — never stuck, never blocking the rows
  behind it. A handler that must finish a row in its own transaction (a DMP
  deposit and its row commit together) calls `complete` there.

Times are Unix seconds. Finished rows are kept `KEEP_FINISHED` seconds, then purged.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update

from mss.errors import StoreError
from mss.processes import alive
from mss.store.db import Database
from mss.store.models import OutboxStatus, outbox_table
from mss.store.sql import Conn, RawStatement, Tx

o = outbox_table.c
KEEP_FINISHED = 7 * 86400
PENDING = OutboxStatus.PENDING.value
FINISHED = (OutboxStatus.DONE.value, OutboxStatus.FAILED.value, OutboxStatus.DROPPED.value)


class LeaseLost(StoreError):
    """A handler finished a row whose lease another process holds now."""


@dataclass(frozen=True, slots=True)
class OutboxAdded:
    """Published after the commit that added rows of `kind` (wakes the runners)."""

    kind: str


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    kind: str
    status: str
    blob_id: int | None
    payload: dict[str, Any]
    attempts: int
    due_at: int
    expires: int | None
    lease_owner: str | None
    created: int
    updated: int
    last_error: str | None
    result: str | None


@dataclass(frozen=True, slots=True)
class NewItem:
    """A row to add: what to do (`payload`, JSON-able) and the blob it concerns."""

    payload: dict[str, Any]
    blob_id: int | None = None
    expires: int | None = None
    due_at: int | None = None  # None: now


@dataclass(frozen=True, slots=True)
class Finish:
    """The end of one attempt: `status` PENDING (retry at `due_at`) or a final one."""

    item_id: int
    status: str
    due_at: int = 0
    error: str | None = None
    result: str | None = None
    keep_attempts: bool = False  # a deferral: this attempt does not count


@dataclass(frozen=True, slots=True)
class KindStats:
    kind: str
    counts: dict[str, int] = field(default_factory=dict)
    oldest_pending: int | None = None  # `created` of the oldest pending row


_COLUMNS = (
    o.id, o.kind, o.status, o.blob_id, o.payload, o.attempts, o.due_at, o.expires,
    o.lease_owner, o.created, o.updated, o.last_error, o.result,
)  # fmt: skip


_NAMES = tuple(column.name for column in _COLUMNS)


def _item(row: Any) -> OutboxItem:
    """A row of `_COLUMNS` (SQLAlchemy's, or a driver's tuple in that order)."""
    values = dict(zip(_NAMES, row, strict=True))
    values["payload"] = json.loads(values["payload"] or "{}")
    return OutboxItem(**values)


# --- adding ----------------------------------------------------------------------------------


_INSERT = RawStatement(
    "INSERT INTO outbox (kind, status, blob_id, payload, attempts, due_at, expires, created, "
    "updated) VALUES (?, 'pending', ?, ?, 0, ?, ?, ?, ?)"
)


def add(tx: Tx, kind: str, items: Sequence[NewItem], now: int) -> None:
    """In the transaction of their cause: rows of `kind` to do after the commit (plain SQL:
    the delivery of a message to a patient adds one, inside the writer)."""
    if not items:
        return
    _INSERT.many(tx.conn, [
        (kind, item.blob_id, json.dumps(item.payload, ensure_ascii=False, separators=(",", ":")),
         now if item.due_at is None else item.due_at, item.expires, now, now)
        for item in items
    ])  # fmt: skip
    tx.after_commit(OutboxAdded(kind))


# --- the runner's side -------------------------------------------------------------------------


_HAS_DUE = RawStatement(
    "SELECT id FROM outbox WHERE status = 'pending' AND due_at <= ? AND kind = ? LIMIT 1"
)
_NEXT_DUE = RawStatement("SELECT min(due_at) FROM outbox WHERE status = 'pending' AND kind = ?")


def has_due(conn: Conn, kind: str, now: int) -> bool:
    return _HAS_DUE.first(conn, now, kind) is not None


def next_due(conn: Conn, kind: str) -> int | None:
    """When the next pending row of `kind` is due (its retry or the end of its lease)."""
    value = _NEXT_DUE.scalar(conn, kind)
    return None if value is None else int(value)


_RETURNING = "RETURNING " + ", ".join(_NAMES)  # the columns `_item` reads, in its order
_DUE = (
    "SELECT id FROM outbox WHERE status = 'pending' AND due_at <= ? AND kind = ? "
    "ORDER BY due_at, id LIMIT ?"
)
_CLAIM = (
    "UPDATE outbox SET due_at = ?, attempts = attempts + 1, lease_owner = ?, updated = ? "
    "WHERE id IN ({due}) " + _RETURNING
)
# Plain SQL (the runner claims after every burst of commits: SQLAlchemy's compilation
# of these two statements cost more than the rest of a notification's work).
_CLAIM_SQLITE = RawStatement(_CLAIM.format(due=_DUE))
# other processes skip the rows this one locks
_CLAIM_POSTGRESQL = RawStatement(_CLAIM.format(due=_DUE + " FOR UPDATE SKIP LOCKED"))
_BURY = RawStatement(
    "UPDATE outbox SET status = 'dead', lease_owner = NULL, updated = ?, "
    "last_error = COALESCE(last_error, 'its lease ran out: the process died on it') "
    "WHERE status = 'pending' AND due_at <= ? AND kind = ? AND attempts >= ? " + _RETURNING
)


def claim(tx: Tx, kind: str, *, now: int, lease: int, owner: str, limit: int) -> list[OutboxItem]:
    """Lease up to `limit` due rows of `kind`, oldest due first; return those won."""
    statement = _CLAIM_POSTGRESQL if tx.dialect == "postgresql" else _CLAIM_SQLITE
    won = statement.all(tx.conn, now + lease, owner, now, now, kind, limit)
    return sorted((_item(row) for row in won), key=lambda item: (item.due_at, item.id))


def bury(tx: Tx, kind: str, *, now: int, max_attempts: int) -> list[OutboxItem]:
    """Dead-letter the due rows of `kind` that were claimed `max_attempts` times without
    ever being finished: the process handling them kept dying (a poison row that
    crashes its worker must not be claimed forever)."""
    return [_item(row) for row in _BURY.all(tx.conn, now, now, kind, max_attempts)]


@dataclass(frozen=True, slots=True)
class Claimed:
    items: list[OutboxItem]  # leased to us
    buried: list[OutboxItem]  # dead-lettered on the way (see `bury`)


def _leased_by(item_id: int, owner: str) -> Any:
    """Only the holder of the lease may finish a row (a lease that ran out and was
    taken by another process is no longer ours)."""
    return and_(o.id == item_id, o.status == PENDING, o.lease_owner == owner)


_FINISH = RawStatement(
    "UPDATE outbox SET status = ?, lease_owner = NULL, updated = ?, last_error = ?, "
    "due_at = CASE WHEN ? = 'pending' THEN ? ELSE due_at END, attempts = attempts - ?, "
    "result = COALESCE(?, result) WHERE id = ? AND status = 'pending' AND lease_owner = ?"
)


def finish(tx: Tx, ends: Iterable[Finish], *, owner: str, now: int) -> int:
    """Record the end of attempts; return how many rows were still ours (only the holder
    of the lease may finish a row: one whose lease ran out and went to another process
    is no longer ours)."""
    changed = 0
    for end in ends:
        changed += _FINISH.run(
            tx.conn, end.status, now, end.error[:4000] if end.error else None, end.status,
            end.due_at, 1 if end.keep_attempts else 0,
            end.result[:4000] if end.result is not None else None, end.item_id, owner,
        )  # fmt: skip
    return changed


_COMPLETE = RawStatement(
    "UPDATE outbox SET status = 'done', result = ?, last_error = NULL, lease_owner = NULL, "
    "updated = ? WHERE id = ? AND status = 'pending' AND lease_owner = ?"
)


def complete(tx: Tx, item: OutboxItem, result: str, *, now: int) -> None:
    """Mark a claimed row done inside the handler's own transaction (its work and its
    end commit together: a crash cannot redo work that committed). A row whose lease
    ran out and went to another process raises `LeaseLost`: the work rolls back."""
    if not _COMPLETE.run(tx.conn, result[:4000], now, item.id, item.lease_owner or ""):
        raise LeaseLost(f"outbox row {item.id}: its lease ran out (another process has it)")


def release_orphans(tx: Tx, *, host: str, alive: Callable[[int], bool], now: int) -> int:
    """Rows leased by a process of this machine that is gone (killed, crashed): due
    now, not at the end of their lease. Owners are `host:pid:random`."""
    leased = tx.conn.execute(
        select(o.id, o.lease_owner).where(o.status == PENDING, o.lease_owner.like(f"{host}:%"))
    ).all()
    dead = [row.id for row in leased if not alive(_pid_of(row.lease_owner))]
    if dead:
        tx.conn.execute(
            update(outbox_table).where(o.id.in_(dead))
            .values(due_at=now, lease_owner=None, updated=now)
        )  # fmt: skip
        tx.after_commit(OutboxAdded("*"))
    return len(dead)


def _pid_of(owner: str) -> int:
    parts = owner.split(":")
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else 0


# --- the operator's side ------------------------------------------------------------------------


def list_items(
    conn: Conn,
    *,
    kinds: Sequence[str] | None = None,
    statuses: Sequence[str] | None = None,
    ids: Sequence[int] | None = None,
    limit: int | None = None,
) -> list[OutboxItem]:
    query = select(*_COLUMNS).order_by(o.id)
    if kinds:
        query = query.where(o.kind.in_(list(kinds)))
    if statuses:
        query = query.where(o.status.in_(list(statuses)))
    if ids is not None:
        query = query.where(o.id.in_(list(ids)))
    if limit is not None:
        query = query.limit(limit)
    return [_item(row) for row in conn.execute(query)]


def retry(tx: Tx, *, ids: Sequence[int] | None, kinds: Sequence[str] | None, now: int) -> int:
    """Make rows due now: pending ones wait no more (unless a live process holds their
    lease), dead ones live again (attempts start over). All pending and dead rows
    when `ids` is None."""
    query = update(outbox_table).where(o.status.in_([PENDING, OutboxStatus.DEAD.value]))
    if ids is not None:
        query = query.where(o.id.in_(list(ids)))
    if kinds:
        query = query.where(o.kind.in_(list(kinds)))
    values = {"status": PENDING, "due_at": now, "updated": now, "lease_owner": None}
    unleased = or_(o.lease_owner.is_(None), o.due_at <= now)  # nobody, or a dead process
    waiting = query.where(o.status == PENDING, unleased).values(**values)
    count = int(tx.conn.execute(waiting).rowcount)
    revived = query.where(o.status == OutboxStatus.DEAD.value).values(attempts=0, **values)
    count += int(tx.conn.execute(revived).rowcount)
    for kind in kinds or ["*"]:
        tx.after_commit(OutboxAdded(kind))
    return count


def drop(tx: Tx, ids: Sequence[int], *, kinds: Sequence[str] | None, now: int) -> int:
    """Give up on pending or dead rows (an operator's decision; no DSN, no MDN)."""
    query = update(outbox_table).where(
        o.id.in_(list(ids)), o.status.in_([PENDING, OutboxStatus.DEAD.value])
    )
    if kinds:
        query = query.where(o.kind.in_(list(kinds)))
    values = {"status": OutboxStatus.DROPPED.value, "updated": now, "lease_owner": None}
    return int(tx.conn.execute(query.values(last_error="dropped by admin", **values)).rowcount)


def stats(conn: Conn) -> list[KindStats]:
    """Rows per kind and status, and the age of the oldest pending row (metrics)."""
    rows = conn.execute(
        select(o.kind, o.status, func.count(), func.min(o.created)).group_by(o.kind, o.status)
    ).all()
    out: dict[str, KindStats] = {}
    for kind, status, count, oldest in rows:
        entry = out.setdefault(kind, KindStats(kind))
        entry.counts[status] = int(count)
        if status == PENDING:
            out[kind] = KindStats(kind, entry.counts, int(oldest))
    return sorted(out.values(), key=lambda s: s.kind)


def purge_finished(tx: Tx, *, now: int, keep: int = KEEP_FINISHED) -> int:
    """Delete rows finished more than `keep` seconds ago (dead rows stay for an operator)."""
    query = delete(outbox_table).where(o.status.in_(FINISHED), o.updated < now - keep)
    return int(tx.conn.execute(query).rowcount)


class SQLOutbox:
    """The `Outbox` port over the database (the runner's side of this module)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def has_due(self, kind: str, now: int) -> bool:
        return await self._db.read_fast(lambda c: has_due(c, kind, now))

    async def next_due(self, kind: str) -> int | None:
        return await self._db.read_fast(lambda c: next_due(c, kind))

    async def claim(
        self, kind: str, *, now: int, lease: int, owner: str, limit: int, max_attempts: int
    ) -> Claimed:
        def both(tx: Tx) -> Claimed:
            buried = bury(tx, kind, now=now, max_attempts=max_attempts)
            items = claim(tx, kind, now=now, lease=lease, owner=owner, limit=limit)
            return Claimed(items, buried)

        return await self._db.write(both)

    async def finish(self, ends: Iterable[Finish], *, owner: str, now: int) -> int:
        done = list(ends)
        return await self._db.write(lambda tx: finish(tx, done, owner=owner, now=now))

    async def purge(self, now: int) -> int:
        return await self._db.write(lambda tx: purge_finished(tx, now=now))

    async def release_orphans(self, now: int) -> int:
        host = socket.gethostname()
        return await self._db.write(lambda tx: release_orphans(tx, host=host, alive=alive, now=now))
