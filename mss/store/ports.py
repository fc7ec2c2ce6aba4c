"""The ports of the store: what the rest of mss needs, where an implementation is swapped.

- `BlobStore`: message and document bodies, encrypted before they are stored
  (`blobs.DatabaseBlobStore` today: they commit with their metadata in one
  transaction; an S3-compatible store is the scale-out plan).
- `ChangeFeed`: what commits changed, in this process and in the others
  (`changes.py`: in-process, PostgreSQL LISTEN/NOTIFY, SQLite `data_version`); it
  wakes IMAP sessions and the outbox runners alike.
- `Outbox`: the runner's view of the after-commit work (`outbox.SQLOutbox`).

Only the composition root (`mss/app.py`) names the concrete classes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from mss.store.blobs import EncryptedBlob
from mss.store.changes import Change
from mss.store.outbox import Finish, OutboxItem
from mss.store.sql import Conn, Tx


class BlobStore(Protocol):
    @property
    def current_key(self) -> str: ...

    def seal(self, data: bytes) -> EncryptedBlob:
        """Encrypt `data` (the CPU part: outside any transaction)."""
        ...

    def put(self, tx: Tx, sealed: Sequence[EncryptedBlob]) -> list[int]:
        """Store sealed bodies in the transaction `tx`; their ids, in order."""
        ...

    def get(self, conn: Conn, blob_id: int) -> bytes:
        """The decrypted body of `blob_id` (StoreError if there is none)."""
        ...

    async def reencrypt_some(self, limit: int = 200) -> int:
        """Move up to `limit` bodies to the current key (lazy key rotation)."""
        ...


class ChangeFeed(Protocol):
    def subscribe(self, callback: Callable[[Change], None]) -> None:
        """Call `callback(change)` on the event loop after changes are committed."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Outbox(Protocol):
    async def has_due(self, kind: str, now: int) -> bool: ...

    async def next_due(self, kind: str) -> int | None: ...

    async def claim(
        self, kind: str, *, now: int, lease: int, owner: str, limit: int
    ) -> list[OutboxItem]: ...

    async def finish(self, ends: Iterable[Finish], *, owner: str, now: int) -> int: ...

    async def purge(self, now: int) -> int: ...
