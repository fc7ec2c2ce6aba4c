"""`MailboxBus`: which IMAP sessions watch which mailbox, and waking them.

The change feed (`on_change`) brings this process's commits, other processes'
(their mailboxes from a NOTIFY, or "something changed" from SQLite's
data_version: then the bus looks at the marks of the mailboxes it watches); the
sessions watching the changed mailboxes are poked; they then ask the store
what changed, sharing one read when they ask the same question at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any, Protocol

from mss.errors import MssError
from mss.store.ports import Change

log = logging.getLogger(__name__)
# (HIGHESTMODSEQ, UIDNEXT) of each of these mailboxes, as committed now
MarksReader = Callable[[list[int]], Awaitable[dict[int, tuple[int, int]]]]


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
        self._looking: asyncio.Task[None] | None = None
        self._look_again = False

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

    def watch(self, mailbox_id: int, session: Watcher, seen: tuple[int, int] | None = None) -> None:
        """`session` watches the mailbox from now on; `seen` is the (HIGHESTMODSEQ,
        UIDNEXT) it loaded: a change the bus already heard of since is told at once."""
        self._watchers.setdefault(mailbox_id, set()).add(session)
        known = self._marks.get(mailbox_id)
        if seen is not None and known is not None and known[0] > seen[0]:
            session.poke()

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

    def on_change(self, change: Change, read_marks: MarksReader) -> None:
        """From the change feed: this process's commits (with their marks), other
        processes' (their mailboxes, or "something changed": look)."""
        if change.marks:
            self.committed(dict(change.marks))
        if change.mailboxes:
            self.changed(change.mailboxes)
        if change.unknown:
            self._look_again = True  # a look under way may have read before this commit
            if self._looking is None:
                self._looking = asyncio.create_task(self._look(read_marks), name="imap-look")

    async def _look(self, read_marks: MarksReader) -> None:
        """Wake the sessions of the watched mailboxes whose marks moved, until no
        change came in during the last look."""
        try:
            while self._look_again:
                self._look_again = False
                await self._look_once(read_marks)
        finally:
            self._looking = None

    async def _look_once(self, read_marks: MarksReader) -> None:
        boxes = sorted(self._watchers)
        if not boxes:
            return
        try:
            marks = await read_marks(boxes)
        except MssError:
            log.exception("IMAP: looking for other processes' changes failed")
            return
        moved = [b for b in boxes if marks.get(b) != self._marks.get(b)]
        self._marks.update(marks)
        if moved:
            self.changed(moved)

    @property
    def sessions(self) -> int:
        return sum(len(s) for s in self._watchers.values())
