"""The bodies' store, for the operator: `mss blobs gc`."""

from __future__ import annotations

import asyncio

from mss.config import Settings
from mss.instance import open_store
from mss.store.blobs_s3 import CollectReport


def blobs_gc(settings: Settings) -> tuple[int, CollectReport]:
    """Collect what nothing refers to; safe while the server runs (see
    `Store.collect_garbage`). (blob rows deleted, the object store's report)"""
    return asyncio.run(_collect(settings))


async def _collect(settings: Settings) -> tuple[int, CollectReport]:
    store = open_store(settings)
    store.start()
    try:
        return await store.collect_garbage()
    finally:
        await store.close()
