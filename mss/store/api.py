"""`Store`: what the rest of mss sees of storage.

It joins the database (group-commit writer, readers) and the blob cipher, and
offers the one operation everything else is built on: `deliver`, which returns
once the message is durably committed in every target mailbox.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, text

from mss.core.mime import ParsedMessage
from mss.errors import StoreError
from mss.store.blobs import (
    DatabaseBlobStore,
    load_cipher,
)
from mss.store.blobs_s3 import CollectReport, S3BlobStore, S3Options
from mss.store.db import Database
from mss.store.mailboxes import (
    Delivered,
    DeliveryItem,
    PreparedMessage,
    Target,
    deliver_many,
    message_bytes,
    prepare_message,
)
from mss.store.messages import collect_orphan_blobs
from mss.store.ports import BlobStore
from mss.store.sql import Refused, Tx

T = TypeVar("T")


class Store:
    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self.db = db
        self.blobs = blobs

    def __repr__(self) -> str:
        return f"Store({self.db!r})"

    @classmethod
    def open(
        cls,
        url: str,
        key_file: Path,
        *,
        batch_max: int = 512,
        reader_threads: int = 4,
        migrate: bool = True,
        s3: S3Options | None = None,
    ) -> Store:
        """Open (and by default migrate) the database; the writer is not started yet.

        `s3`: bodies go to that object store (`blobs_s3`) instead of the database."""
        cipher = load_cipher(key_file)
        db = Database(url, batch_max=batch_max, reader_threads=reader_threads)
        if migrate:
            db.migrate()
        if s3 is None:
            return cls(db, DatabaseBlobStore(db, cipher))
        return cls(db, S3BlobStore(db, cipher, s3))  # imports its client library now

    def start(self) -> None:
        self.db.start()

    async def close(self) -> None:
        await self.db.close()

    # --- delivery ------------------------------------------------------------------------

    def prepare(self, raw: bytes, parsed: ParsedMessage | None = None) -> PreparedMessage:
        """Encrypt `raw` and take what IMAP needs from its parse (`parsed`, else parsed now)."""
        return prepare_message(raw, self.blobs, parsed)

    async def deliver(
        self,
        raw: bytes | PreparedMessage,
        targets: Sequence[Target],
        *,
        internal_date: int | None = None,
        also: Callable[[Tx, Delivered], None] | None = None,
        decide: Callable[[Tx], None] | None = None,
    ) -> Delivered:
        """Store `raw` once and a copy in every target mailbox; return once durable.

        `decide` runs first in the transaction and may refuse this message alone (its
        error is raised here, the rest of the group commit goes on); `also` runs in
        the same transaction after the copies are inserted (the delivery pipeline
        records conversations and outbox rows there), so the message and its
        consequences commit together or not at all.
        """
        prepared = raw if isinstance(raw, PreparedMessage) else self.prepare(raw)
        await self.blobs.stage([prepared.blob])  # durable before the commit names it
        when = int(time.time()) if internal_date is None else internal_date
        item = DeliveryItem(prepared, targets, when, self.blobs, also, decide)
        delivered: Delivered = await self.db.write_bulk(deliver_many, item)
        return delivered

    async def deliver_together(
        self,
        messages: Sequence[tuple[bytes, Sequence[Target], int | None]],
        *,
        decide: Callable[[Tx], None] | None = None,
        after: Callable[[Tx], None] | None = None,
    ) -> list[Delivered]:
        """Store several messages in one transaction: all of them, or none (MULTIAPPEND).
        `decide` runs first in the transaction; its error refuses them all; `after` runs
        last, in the same transaction, once they are stored (it must be repeatable)."""
        now = int(time.time())
        items = [DeliveryItem(self.prepare(raw), targets, now if when is None else when,
                              self.blobs) for raw, targets, when in messages]  # fmt: skip
        await self.blobs.stage([item.message.blob for item in items])

        def store_all(tx: Tx) -> list[Delivered | Refused]:
            if decide is not None:
                decide(tx)
            stored = deliver_many(tx, items)
            if after is not None:
                after(tx)
            return stored

        stored = await self.db.write(store_all)
        return [d for d in stored if isinstance(d, Delivered)]

    # --- generic access ------------------------------------------------------------------

    async def read(self, fn: Callable[[Connection], T]) -> T:
        return await self.db.read(fn)

    async def read_fast(self, fn: Callable[[Connection], T]) -> T:
        """A small, bounded read (see `Database.read_fast`)."""
        return await self.db.read_fast(fn)

    async def write(self, fn: Callable[[Tx], T]) -> T:
        return await self.db.write(fn)

    async def ping(self) -> None:
        """Ask the database for nothing: raises `StoreError` when it cannot answer."""
        await self.db.read(_select_one)

    async def integrity(self) -> str:
        """ "ok", or what is damaged: SQLite's `PRAGMA quick_check` (it reads the whole
        file: run it in the background, not per request); PostgreSQL checks its own
        pages as it reads them ("ok" once it answers)."""
        try:
            return await self.db.read(_quick_check)
        except StoreError as exc:
            return str(exc)

    async def read_blob(self, fn: Callable[[Connection], T]) -> T:
        """A read that fetches a body or two: on the event loop when the blob store is
        local (`read_fast`), in a reader thread when it crosses the network."""
        if self.blobs.remote:
            return await self.db.read(fn)
        return await self.db.read_fast(fn)

    async def blob_bytes(self, blob_id: int) -> bytes:
        return await self.db.read(lambda conn: self.blobs.get(conn, blob_id))

    async def message_bytes(self, box_id: int, uid: int) -> bytes:
        return await self.db.read(lambda conn: message_bytes(conn, self.blobs, box_id, uid))

    async def collect_garbage(self, now: float | None = None) -> tuple[int, CollectReport]:
        """Delete the bodies nothing refers to (expunged messages, purged outbox rows):
        their rows, then the objects of the object store no row names, past its grace.
        Safe while the server runs. (rows deleted, what the object store's collector did)"""
        rows = 0
        while moved := await self.db.write(collect_orphan_blobs):
            rows += moved
        if isinstance(self.blobs, S3BlobStore):
            return rows, await self.blobs.collect(now)
        return rows, CollectReport(listed=0, deleted=0)

    async def reencrypt_some(self, limit: int = 200) -> int:
        """Move up to `limit` blobs to the current key (lazy key rotation)."""
        moved: int = await self.blobs.reencrypt_some(limit)
        return moved


def _quick_check(conn: Connection) -> str:
    if conn.dialect.name != "sqlite":
        conn.execute(text("SELECT 1")).scalar()
        return "ok"
    found = [str(row[0]) for row in conn.exec_driver_sql("PRAGMA quick_check(5)")]
    return "ok" if found == ["ok"] else "; ".join(found)


def _select_one(conn: Connection) -> None:
    conn.execute(text("SELECT 1")).scalar()
