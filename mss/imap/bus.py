"""`MailboxBus`: which IMAP sessions watch which mailbox, and waking them.

After a commit of this process (`committed`), a NOTIFY from another process
(`changed`), or a change seen by the SQLite poll of several workers (`poll`),
the sessions watching the changed mailboxes are poked; they then ask the store
what changed, sharing one read when they ask the same question at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from typing import Any, Protocol

from mss.errors import MssError
from mss.store.api import Store
from mss.store.db import Conn
from mss.store.folders import data_version, mailbox_marks

log = logging.getLogger(__name__)


class Watcher(Protocol):
    """A session watching a mailbox: poked when the mailbox changed."""

    def poke(self) -> None: ...


class MailboxBus:
    """Which sessions watch which mailbox; wakes them after a commit (or a NOTIFY).

    It also lets sessions that ask the same question at the same time (what
    changed in mailbox M since modseq X?) share one query: a new message to a
    mailbox watched by thousands of IDLE sessions costs one read, not thousands.
    """

    def __init__(self) -> None:
        self._watchers: dict[int, set[Watcher]] = {}
        self._inflight: dict[tuple[int, ...], asyncio.Future[Any]] = {}
        # Bumped at every change of a mailbox: a read may only be shared by sessions
        # woken by the same change (one started earlier may miss a later change).
        self._generation: dict[int, int] = {}
        # (HIGHESTMODSEQ, UIDNEXT) last known of each mailbox (see `poll`)
        self._marks: dict[int, tuple[int, int]] = {}

    def generation(self, mailbox_id: int) -> int:
        return self._generation.get(mailbox_id, 0)

    async def shared(self, key: tuple[int, ...], read: Callable[[], Any]) -> Any:
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await read()
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        finally:
            del self._inflight[key]

    def watch(self, mailbox_id: int, session: Watcher) -> None:
        self._watchers.setdefault(mailbox_id, set()).add(session)

    def unwatch(self, mailbox_id: int, session: Watcher) -> None:
        watchers = self._watchers.get(mailbox_id)
        if watchers is not None:
            watchers.discard(session)
            if not watchers:
                del self._watchers[mailbox_id]

    def changed(self, mailbox_ids: Collection[int] | None) -> None:
        """Wake the sessions watching these mailboxes (None: every mailbox)."""
        for mailbox_id in list(self._watchers) if mailbox_ids is None else mailbox_ids:
            self._generation[mailbox_id] = self._generation.get(mailbox_id, 0) + 1
            for session in self._watchers.get(mailbox_id, ()):
                session.poke()

    def committed(self, marks: dict[int, tuple[int, int]]) -> None:
        """This process committed changes: (HIGHESTMODSEQ, UIDNEXT) of each mailbox."""
        for mailbox_id, mark in marks.items():
            if mark[0] or mark[1]:
                self._marks[mailbox_id] = mark
            else:
                self._marks.pop(mailbox_id, None)  # deleted or renamed
        self.changed(marks)

    async def poll(self, store: Store, interval: float = 0.1) -> None:
        """Other processes' changes on SQLite (several workers): look for them every
        `interval` seconds, only when a commit happened since (PRAGMA data_version),
        and only in the mailboxes this process's sessions watch."""
        seen: list[int | None] = [None]

        def look(conn: Conn, boxes: list[int]) -> dict[int, tuple[int, int]] | None:
            version = data_version(conn)
            if version == seen[0]:
                return None
            seen[0] = version
            return mailbox_marks(conn, boxes)

        while True:
            await asyncio.sleep(interval)
            boxes = sorted(self._watchers)
            if not boxes:
                continue
            try:
                marks = await store.read_fast(lambda c, boxes=boxes: look(c, boxes))  # type: ignore[misc]
            except MssError:
                log.exception("IMAP change poll failed")
                continue
            if marks is None:
                continue
            moved = [b for b in boxes if marks.get(b) != self._marks.get(b)]
            self._marks.update(marks)
            if moved:
                self.changed(moved)

    @property
    def sessions(self) -> int:
        return sum(len(s) for s in self._watchers.values())
