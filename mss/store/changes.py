"""The change feed: what commits changed, told to whoever waits for it, in every process.

One feed wakes both the IMAP sessions (a mailbox changed) and the outbox runners
(rows of some kind were added). Three sources, one `Change` value:

- this process's own commits, at once (the writer's after-commit events);
- other processes on PostgreSQL: a NOTIFY sent inside each committing transaction
  (delivered only if it commits), heard by a LISTEN thread; after a lost
  connection, "anything may have changed";
- other processes on SQLite: `PRAGMA data_version` looked at every `interval`
  seconds (it moves when another connection commits): "something changed".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from mss.errors import MssError
from mss.store.db import Database
from mss.store.failover import libpq_conninfo
from mss.store.ports import Change
from mss.store.sql import RawStatement, describe

log = logging.getLogger(__name__)
CHANNEL = "mss_changes"
_DATA_VERSION = RawStatement("PRAGMA data_version")
_CHUNK = 400  # ids per NOTIFY: a payload holds at most 8000 bytes


class LocalFeed:
    """The commits of this process only (enough for one process, and the base of the
    other feeds)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._subscribers: list[Callable[[Change], None]] = []
        db.subscribe(self._committed)

    def subscribe(self, callback: Callable[[Change], None]) -> None:
        self._subscribers.append(callback)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def _committed(self, events: list[object]) -> None:
        change = Change.of_events(events)
        if change:
            self.publish(change)

    def publish(self, change: Change) -> None:
        for callback in self._subscribers:
            try:
                callback(change)
            except Exception:
                log.exception("a change-feed subscriber failed")


class SQLiteFeed(LocalFeed):
    """Several processes on one SQLite file: look for their commits every `interval`."""

    def __init__(self, db: Database, interval: float = 0.1) -> None:
        super().__init__(db)
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._poll(), name="change-feed-poll")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _poll(self) -> None:
        seen: int | None = None  # the first look reports "something changed": what
        while True:  # committed before it is unknown (sessions may have started since)
            version: int | None = seen
            try:
                version = await self._db.read_fast(lambda c: int(_DATA_VERSION.scalar(c)))
            except MssError:
                log.exception("change feed: reading data_version failed")
            if version != seen:
                self.publish(Change(unknown=True))
            seen = version
            await asyncio.sleep(self._interval)


class PostgresFeed(LocalFeed):
    """Several processes or machines on one PostgreSQL: LISTEN/NOTIFY."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._token = db.process_token
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        db.in_commit(self._notify)

    def _notify(self, conn: Connection, events: list[object]) -> None:
        """Inside the committing transaction: tell the others what it changed."""
        change = Change.of_events(events)
        boxes = sorted(change.marks)
        kinds = ",".join(sorted(change.outbox))
        for i in range(0, max(len(boxes), 1 if kinds else 0), _CHUNK):
            ids = ",".join(map(str, boxes[i : i + _CHUNK]))
            payload = f"{self._token};{ids};{kinds if i == 0 else ''}"
            conn.exec_driver_sql("SELECT pg_notify(%s, %s)", (CHANNEL, payload))

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        conninfo = libpq_conninfo(self._db.write_engine)  # every host of a multi-host URL
        self._thread = threading.Thread(
            target=self._listen, args=(loop, conninfo), name="mss-listen", daemon=True
        )
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 2.0)

    def _listen(self, loop: asyncio.AbstractEventLoop, conninfo: str) -> None:
        import psycopg

        connected_before = False
        while not self._stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    if connected_before:  # notices may have been lost meanwhile
                        self._hand_over(loop, Change(unknown=True))
                    connected_before = True
                    self._receive(loop, conn)
            except psycopg.Error as exc:
                log.warning("LISTEN %s: %s; reconnecting", CHANNEL, describe(exc))
                self._stop.wait(1.0)

    def _receive(self, loop: asyncio.AbstractEventLoop, conn: Any) -> None:
        while not self._stop.is_set():
            for notice in conn.notifies(timeout=0.5):
                change = self._parse(notice.payload)
                if change is not None:
                    self._hand_over(loop, change)

    def _parse(self, payload: str) -> Change | None:
        token, _, rest = payload.partition(";")
        if token == self._token:
            return None  # ours: already told by the local feed
        ids, _, kinds = rest.partition(";")
        return Change(
            mailboxes=frozenset(int(i) for i in ids.split(",") if i.isdigit()),
            outbox=frozenset(k for k in kinds.split(",") if k),
        )

    def _hand_over(self, loop: asyncio.AbstractEventLoop, change: Change) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: we are stopping
            loop.call_soon_threadsafe(self.publish, change)


def open_feed(db: Database, *, shared: bool) -> LocalFeed:
    """The feed for this database: `shared` when other processes write to it too."""
    if db.dialect == "postgresql":
        return PostgresFeed(db)
    return SQLiteFeed(db) if shared else LocalFeed(db)
