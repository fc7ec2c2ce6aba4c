"""The relay queue, mail waiting for another operator: `mss queue list|retry|drop`."""

from __future__ import annotations

import time
from collections.abc import Sequence

from mss.config import Settings
from mss.instance import opened_store
from mss.store.queue import QueueEntry, drop, list_entries, retry_now


def queue_entries(settings: Settings, *, everything: bool) -> list[QueueEntry]:
    with opened_store(settings) as store:
        statuses = None if everything else ["queued"]
        return store.db.read_sync(lambda c: list_entries(c, statuses))


def queue_retry(settings: Settings, ids: Sequence[int] | None) -> int:
    """Make queued messages due now; the running server sends them within seconds."""
    with opened_store(settings) as store:
        return store.db.write_sync(lambda tx: retry_now(tx, ids, int(time.time())))


def queue_drop(settings: Settings, ids: Sequence[int]) -> int:
    with opened_store(settings) as store:
        return store.db.write_sync(lambda tx: drop(tx, ids, int(time.time())))
