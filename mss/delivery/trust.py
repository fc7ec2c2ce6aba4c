"""The MSSanté trust space as the mail path sees it: our domains and the whitelist.

The whitelist lives in the database (`mss trust import`); this cache is read
on every MAIL and RCPT, refreshed at start and every minute, so several
processes on one PostgreSQL pick up a new import without a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from mss.errors import MssError
from mss.store.api import Store
from mss.store.trust import trusted_domains

log = logging.getLogger(__name__)


class TrustSpace:
    def __init__(self, store: Store, local_domains: Iterable[str]) -> None:
        self._store = store
        self._local = frozenset(local_domains)
        self._whitelist: frozenset[str] = frozenset()

    def is_local(self, domain: str) -> bool:
        return domain in self._local

    def trusted(self, domain: str) -> bool:
        """May we exchange mail with this domain? (ours, or on the national whitelist)"""
        return domain in self._local or domain in self._whitelist

    @property
    def whitelist(self) -> frozenset[str]:
        return self._whitelist

    async def refresh(self) -> None:
        self._whitelist = frozenset(await self._store.read(trusted_domains))

    async def keep_fresh(self, interval: float = 60.0) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except MssError:
                log.exception("could not refresh the trust-space whitelist")
