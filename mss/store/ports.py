"""The ports of the store: what the rest of mss needs, where an implementation is swapped.

- `BlobStore`: message and document bodies, encrypted before they are stored
  (`blobs.DatabaseBlobStore`, the default: they commit with their metadata in one
  transaction; `blobs_s3.S3BlobStore`: in an S3-compatible object store, uploaded
  before the transaction that names them commits).
- `ChangeFeed`: what commits changed (`Change`), in this process and in the others
  (`changes.py`: in-process, PostgreSQL LISTEN/NOTIFY, SQLite `data_version`); it
  wakes IMAP sessions and the outbox runners alike.
- `Outbox`: the runner's view of the after-commit work (`outbox.SQLOutbox`), and
  `Handler`, what each kind of work implements (relay, DMP deposit, MDN…), with its
  `RetryPolicy` and its outcomes (`Done`, `Failed`, `Retry`).

Only the composition root (`mss/app.py`, `mss/wiring.py`) names the concrete classes
(an import contract checks it).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mss.store.blobs import EncryptedBlob
from mss.store.mailboxes import MailboxChanged
from mss.store.outbox import Claimed, Finish, OutboxAdded, OutboxItem
from mss.store.sql import Conn, Tx


class BlobStore(Protocol):
    # True when `get` leaves the machine (an object store): never on the event loop.
    remote: bool

    @property
    def current_key(self) -> str: ...

    def seal(self, data: bytes) -> EncryptedBlob:
        """Encrypt `data` (the CPU part: outside any transaction)."""
        ...

    async def stage(self, sealed: Sequence[EncryptedBlob]) -> None:
        """Make sealed bodies durable before the transaction that names them (an
        object store uploads them here; StoreError when it cannot: answer 451)."""
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


@dataclass(frozen=True, slots=True)
class Change:
    """What committed, as far as this process can know."""

    # mailboxes this process changed: id -> (HIGHESTMODSEQ, UIDNEXT); (0, 0): gone
    marks: Mapping[int, tuple[int, int]] = field(default_factory=dict)
    mailboxes: frozenset[int] = frozenset()  # mailboxes another process changed
    outbox: frozenset[str] = frozenset()  # kinds of outbox rows added ("*": any)
    unknown: bool = False  # something committed elsewhere; what is not known

    @classmethod
    def of_events(cls, events: list[object]) -> Change:
        marks = {e.mailbox_id: (e.highestmodseq, e.uidnext) for e in events
                 if isinstance(e, MailboxChanged)}  # fmt: skip
        kinds = frozenset(e.kind for e in events if isinstance(e, OutboxAdded))
        return cls(marks=marks, outbox=kinds)

    def __bool__(self) -> bool:
        return bool(self.marks or self.mailboxes or self.outbox or self.unknown)


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
        self, kind: str, *, now: int, lease: int, owner: str, limit: int, max_attempts: int
    ) -> Claimed: ...

    async def finish(self, ends: Iterable[Finish], *, owner: str, now: int) -> int: ...

    async def purge(self, now: int) -> int: ...

    async def release_orphans(self, now: int) -> int:
        """Rows leased by a dead process of this machine: due now."""
        ...


# --- the outbox runner's handlers ---------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    base: float = 30.0  # first retry after about this many seconds, then doubling
    cap: float = 3600.0  # never more than this between tries
    max_attempts: int = 10  # then the row is dead-lettered
    lease: int = 300  # seconds a claimed row is ours (then another process may take it)
    batch: int = 20  # rows handed to the handler at once
    concurrency: int = 1  # batches of this kind handled at once

    def delay(self, attempts: int) -> float:
        """Backoff after `attempts` tries: base·2^(attempts-1), capped, ±10 % jitter."""
        exponent = min(max(attempts - 1, 0), 30)
        return float(min(self.cap, self.base * 2**exponent) * random.uniform(0.9, 1.1))


@dataclass(frozen=True, slots=True)
class Done:
    result: str = ""


@dataclass(frozen=True, slots=True)
class Failed:
    """Given up for good; the handler told whoever needed to know (a DSN…)."""

    error: str


@dataclass(frozen=True, slots=True)
class Retry:
    error: str


@dataclass(frozen=True, slots=True)
class Defer:
    """Not yet: due again at `until` (quiet hours, a rate limit); the attempt does not
    count towards `max_attempts`."""

    until: int
    reason: str


Outcome = Done | Failed | Retry | Defer


class Handler(Protocol):
    """One kind of after-commit work."""

    @property
    def kind(self) -> str: ...

    @property
    def policy(self) -> RetryPolicy: ...

    async def handle(self, items: Sequence[OutboxItem]) -> Sequence[Outcome]:
        """One outcome per item, in order."""
        ...

    async def on_dead(self, items: Sequence[OutboxItem]) -> None:
        """The runner gave up on these rows: tell whoever waits (a DSN, an MDN…)."""
        ...
