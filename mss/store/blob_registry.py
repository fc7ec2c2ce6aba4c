"""The database side of the S3 blob store: the `blob` rows that name objects, and
`blob_object`, what the collector knows of each object.

The protocol that keeps a committed row's object from being collected (the object
side is in `blobs_s3`):

- a writer uploads first, then, in the transaction that inserts its `blob` rows,
  `claim`s each object: it locks the object's `blob_object` row (creating it "live"),
  sets `touched_at` to now, and is refused (`ObjectBeingDeleted`: 451, the client
  retries) when the collector has doomed the object, or told to upload it again when
  the collector has deleted it;
- the collector `doom`s, in one transaction, only objects that no `blob` row names and
  whose `touched_at` is older than the grace, then deletes them and marks them
  "deleted" (`forget_deleted` drops those marks after another grace).

Both sides lock the same `blob_object` row: on PostgreSQL a writer that committed
while the collector's UPDATE waited leaves a fresh `touched_at`, which the UPDATE
re-checks on the new row version; on SQLite writers are serial.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, delete, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite

from mss.errors import StoreError
from mss.store.blobs import EncryptedBlob, allocate_blob_ids
from mss.store.models import blob_object_table, blob_table
from mss.store.sql import Conn, RawStatement, Tx

LIVE, DELETING, DELETED = "live", "deleting", "deleted"

obj = blob_object_table.c


class ObjectBeingDeleted(StoreError):
    """The collector is deleting this object right now: try again in a moment."""


def _insert_ignoring_conflicts(tx: Tx, rows: list[dict[str, Any]]) -> Any:
    if tx.dialect == "sqlite":
        return sqlite.insert(blob_object_table).values(rows).on_conflict_do_nothing()
    return postgresql.insert(blob_object_table).values(rows).on_conflict_do_nothing()


def claim(tx: Tx, keys: Iterable[str], now: int) -> list[str]:
    """Claim objects for rows of this transaction; return those to upload again.

    Raises `ObjectBeingDeleted` when one is doomed (the transaction is rolled back)."""
    wanted = sorted(set(keys))  # one order for every writer: no deadlock between them
    if not wanted:
        return []
    rows = [{"object_key": k, "state": LIVE, "touched_at": now} for k in wanted]
    tx.conn.execute(_insert_ignoring_conflicts(tx, rows))
    states: dict[str, str] = dict(
        tx.conn.execute(
            select(obj.object_key, obj.state)
            .where(obj.object_key.in_(wanted))
            .order_by(obj.object_key)
            .with_for_update()
        ).all()
    )
    if any(state == DELETING for state in states.values()):
        raise ObjectBeingDeleted("a body is being collected from the object store")
    tx.conn.execute(
        update(blob_object_table)
        .where(obj.object_key.in_(wanted))
        .values(state=LIVE, touched_at=now)
    )
    return [key for key, state in states.items() if state == DELETED]


_INSERT_ROW = RawStatement(
    "INSERT INTO blob (id, key_id, size, data, object_key) VALUES (?, ?, ?, ?, ?)"
)


def insert_object_rows(tx: Tx, sealed: Sequence[EncryptedBlob]) -> list[int]:
    """`blob` rows naming objects (their bytes are in the object store); their ids."""
    ids = allocate_blob_ids(tx, len(sealed))
    _INSERT_ROW.many(
        tx.conn,
        [(i, b.key_id, b.size, b"", b.address) for i, b in zip(ids, sealed, strict=True)],
    )
    return ids


_READ_ROW = RawStatement("SELECT key_id, data, object_key FROM blob WHERE id = ?")


def read_row(conn: Conn, blob_id: int) -> tuple[str, bytes, str | None]:
    """(key id, bytes in the database, object key or None) of a blob."""
    row = _READ_ROW.first(conn, blob_id)
    if row is None:
        raise StoreError(f"blob {blob_id} does not exist")
    return str(row[0]), bytes(row[1]), row[2]


def move_row(tx: Tx, blob_id: int, sealed: EncryptedBlob) -> None:
    """Point a blob at a new object (re-encrypted under another key)."""
    tx.conn.execute(
        update(blob_table)
        .where(blob_table.c.id == blob_id)
        .values(key_id=sealed.key_id, data=b"", object_key=sealed.address)
    )


def _unnamed() -> Any:
    return ~exists().where(blob_table.c.object_key == obj.object_key)


def doom(tx: Tx, listed: Sequence[str], cutoff: int, now: int) -> list[str]:
    """Mark "deleting" the objects of `listed` (all older than the grace in the store)
    that no `blob` row names and no writer touched since `cutoff`; return them."""
    named = {row[0] for row in tx.conn.execute(
        select(blob_table.c.object_key).where(blob_table.c.object_key.in_(list(listed)))
    )}  # fmt: skip
    unclaimed = [
        {"object_key": key, "state": DELETING, "touched_at": now}
        for key in sorted(set(listed) - named)
    ]
    found: set[str] = set()
    if unclaimed:  # objects no writer ever claimed (its transaction never committed)
        inserted = tx.conn.execute(
            _insert_ignoring_conflicts(tx, unclaimed).returning(obj.object_key)
        )
        found |= {row[0] for row in inserted}
    if listed:
        doomed = tx.conn.execute(
            update(blob_object_table)
            .where(
                obj.object_key.in_(list(listed)),
                obj.state != DELETING,
                obj.touched_at < cutoff,
                _unnamed(),
            )
            .values(state=DELETING, touched_at=now)
            .returning(obj.object_key)
        )
        found |= {row[0] for row in doomed}
    return sorted(found)


def doomed_earlier(conn: Conn) -> list[str]:
    """Objects a collector doomed and did not finish deleting (it stopped)."""
    return [row[0] for row in conn.execute(select(obj.object_key).where(obj.state == DELETING))]


def mark_deleted(tx: Tx, keys: Sequence[str], now: int) -> None:
    if keys:
        tx.conn.execute(
            update(blob_object_table)
            .where(obj.object_key.in_(list(keys)), obj.state == DELETING)
            .values(state=DELETED, touched_at=now)
        )


def forget_deleted(tx: Tx, cutoff: int) -> int:
    """Drop the marks of objects deleted before `cutoff`."""
    result = tx.conn.execute(
        delete(blob_object_table).where(and_(obj.state == DELETED, obj.touched_at < cutoff))
    )
    return int(result.rowcount or 0)


def object_rows_to_reencrypt(conn: Conn, current: str, limit: int) -> list[int]:
    """Blobs under another key than `current` (in the database or in objects)."""
    rows = conn.execute(select(blob_table.c.id).where(blob_table.c.key_id != current).limit(limit))
    return [int(row[0]) for row in rows]
