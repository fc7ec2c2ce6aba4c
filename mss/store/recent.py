"""Recent messages by digest: a retried message (a client that lost the 250) is found.

`claim` runs in the transaction that stores the message: the digest is written with
the message, or the row of the same digest within the window is found and its queue
id returned (nothing written). One statement (an upsert that replaces only a row past
the window) decides, so two processes storing the same message at the same instant
cannot both claim it: the second waits for the first's commit, then finds its row.
"""

from __future__ import annotations

from mss.store.sql import RawStatement, Tx

_CLAIM = RawStatement(
    "INSERT INTO recent_submission (key, queue_id, at) VALUES (?, ?, ?)"
    " ON CONFLICT (key) DO UPDATE SET queue_id = excluded.queue_id, at = excluded.at"
    " WHERE recent_submission.at <= ?"
)
_FOUND = RawStatement("SELECT queue_id FROM recent_submission WHERE key = ? AND at > ?")
_PURGE = RawStatement("DELETE FROM recent_submission WHERE at <= ?")


def stored_recently(tx: Tx, key: str, now: int, window: int) -> str | None:
    """The queue id of the message of this digest stored within `window` seconds."""
    found = _FOUND.scalar(tx.conn, key, now - window)
    return None if found is None else str(found)


def claim(tx: Tx, key: str, queue_id: str, now: int, window: int) -> str | None:
    """Record this message's digest (None), or return the queue id of the same message
    stored within `window` seconds (and record nothing)."""
    if _CLAIM.run(tx.conn, key, queue_id, now, now - window):
        return None
    return stored_recently(tx, key, now, window) or queue_id


def purge_recent(tx: Tx, now: int, window: int) -> int:
    """Forget the digests past the window."""
    return _PURGE.run(tx.conn, now - window)
