"""The outbox, every kind of after-commit work: `mss outbox list|retry|drop`."""

from __future__ import annotations

import time
from collections.abc import Sequence

from mss.config import Settings
from mss.errors import InputError
from mss.instance import opened_store
from mss.store import outbox
from mss.store.models import OutboxStatus
from mss.store.outbox import KindStats, OutboxItem

STATUSES = [s.value for s in OutboxStatus]


def outbox_items(
    settings: Settings,
    *,
    kinds: Sequence[str] | None,
    statuses: Sequence[str] | None,
    limit: int | None,
) -> list[OutboxItem]:
    for status in statuses or ():
        if status not in STATUSES:
            raise InputError(f"--status {status!r} is not one of {', '.join(STATUSES)}")
    with opened_store(settings) as store:
        return store.db.read_sync(
            lambda c: outbox.list_items(c, kinds=kinds, statuses=statuses, limit=limit)
        )


def outbox_stats(settings: Settings) -> list[KindStats]:
    with opened_store(settings) as store:
        return store.db.read_sync(outbox.stats)


def outbox_retry(settings: Settings, ids: Sequence[int] | None, kinds: Sequence[str] | None) -> int:
    """Make pending rows due now and revive dead ones; the running server takes them
    within seconds."""
    with opened_store(settings) as store:
        return store.db.write_sync(
            lambda tx: outbox.retry(tx, ids=ids, kinds=kinds, now=int(time.time()))
        )


def outbox_drop(settings: Settings, ids: Sequence[int]) -> int:
    with opened_store(settings) as store:
        return store.db.write_sync(
            lambda tx: outbox.drop(tx, ids, kinds=None, now=int(time.time()))
        )
