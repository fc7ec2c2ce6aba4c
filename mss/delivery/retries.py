"""A retried message is stored once.

A client that sent a whole message but lost the 250 (a dropped connection, a server
killed between the commit and the reply) sends it again. The same Message-ID from
the same envelope sender to the same recipients (in any order) within the window,
with the same bytes, is that retry: it is answered 250 with the first message's
queue id, and nothing is stored, relayed, deposited or notified a second time.
Without a Message-ID from the client there is nothing to know it by: each one is
stored. Other recipients, another sender, a later time or other bytes (software that
reuses a Message-ID for another message must not lose it) make a new message.

The digest is claimed in the transaction that stores the message, after the
conversation rules let it through (a refused message leaves no mark).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from mss.errors import MssError
from mss.store.recent import claim, purge_recent, stored_recently
from mss.store.sql import Tx

WINDOW = 15 * 60  # seconds


class AlreadyStored(MssError):
    """This message was stored within the window: answer as the first time."""

    def __init__(self, queue_id: str) -> None:
        super().__init__(f"already stored as {queue_id}")
        self.queue_id = queue_id


def digest(
    message_id: str | None, sender: str, recipients: Iterable[str], raw: bytes
) -> str | None:
    """What a retry of this message is known by (None: no Message-ID to know it by)."""
    if not message_id or not message_id.strip():
        return None
    content = hashlib.sha256(raw.rstrip(b"\r\n")).hexdigest()  # the end of DATA, as sent
    parts = [message_id.strip(), sender.lower(), content, *sorted({r.lower() for r in recipients})]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def seen(tx: Tx, key: str | None, now: int, window: int = WINDOW) -> None:
    """Raise `AlreadyStored` when this message was stored within the window (read only)."""
    if key is not None and (first := stored_recently(tx, key, now, window)) is not None:
        raise AlreadyStored(first)


def remember(tx: Tx, key: str | None, queue_id: str, now: int, window: int = WINDOW) -> None:
    """Claim the digest for this message, or raise `AlreadyStored` when another
    transaction stored the same message first."""
    if key is not None and (first := claim(tx, key, queue_id, now, window)) is not None:
        raise AlreadyStored(first)


def purge(tx: Tx, now: int, window: int = WINDOW) -> int:
    """Forget the digests of messages stored before the window."""
    return purge_recent(tx, now, window)
