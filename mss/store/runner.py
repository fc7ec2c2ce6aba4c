"""The outbox runner: one loop per kind of work, every kind driven the same way.

Each handler (relay, DMP deposit, MDN, notifications…) names its `kind` and its
`RetryPolicy`, and handles a batch of claimed rows, returning one `Outcome` per
row: `Done`, `Failed` (for good, dealt with by the handler), or `Retry`. The
runner owns everything else (mox `queue/`, Postfix's queue manager): claiming with
a lease, exponential backoff with jitter, dead-lettering after `max_attempts`
(with one log line: a poison row never blocks the rows behind it), and waking up
— a moment (`gather`) after a commit that added rows (`wake`, fed by the change feed of
every process), when the next row falls due, or at the latest every `poll` seconds.

The change feed calls `on_change`. A handler that raises is a bug or an outage:
its rows are retried with backoff and the traceback is logged. Each kind runs in
its own task, so a slow relay never delays a DMP deposit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mss.errors import MssError
from mss.store.models import OutboxStatus
from mss.store.outbox import Finish, OutboxItem
from mss.store.ports import (
    Change,
    Defer,
    Done,
    Failed,
    Handler,
    Outbox,
    Outcome,
    Retry,
    RetryPolicy,
)  # fmt: skip

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Handled:
    item: OutboxItem
    outcome: Outcome
    final: str  # the row's status afterwards


class OutboxRunner:
    def __init__(
        self,
        outbox: Outbox,
        handlers: Sequence[Handler],
        *,
        owner: str,
        poll: float = 5.0,
        gather: float = 0.025,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._outbox = outbox
        self._handlers = {h.kind: h for h in handlers}
        self._owner = owner
        self._poll = poll
        self._gather = gather
        self._clock = clock
        self._wake = {kind: asyncio.Event() for kind in self._handlers}

    @property
    def kinds(self) -> list[str]:
        return list(self._handlers)

    def wake(self, kinds: Sequence[str] | None = None) -> None:
        """New rows were committed (None or "*": of any kind, or unknown)."""
        wanted = self._wake if kinds is None or "*" in kinds else kinds
        for kind in wanted:
            event = self._wake.get(kind)
            if event is not None:
                event.set()

    def on_change(self, change: Change) -> None:
        """From the change feed: wake the kinds that got rows (all, if unknown)."""
        if change.unknown:
            self.wake()
        elif change.outbox:
            self.wake(list(change.outbox))

    async def run(self) -> None:
        """Forever: one task per kind, and the purge of old finished rows. First, the
        rows a dead process of this machine held (killed mid-work) are made due."""
        try:
            released = await self._outbox.release_orphans(int(self._clock()))
            if released:
                log.info("outbox: %d rows of a dead process taken up again", released)
        except MssError:
            log.exception("outbox: taking up the rows of dead processes failed")
        async with asyncio.TaskGroup() as group:
            for kind in self._handlers:
                group.create_task(self._lane(kind), name=f"outbox-{kind}")
            group.create_task(self._purge(), name="outbox-purge")

    async def _purge(self, interval: float = 3600.0) -> None:
        while True:
            try:
                purged = await self._outbox.purge(int(self._clock()))
                if purged:
                    log.info("outbox: %d finished rows purged", purged)
            except MssError:
                log.exception("outbox: purging finished rows failed")
            await asyncio.sleep(interval)

    async def _lane(self, kind: str) -> None:
        while True:
            self._wake[kind].clear()
            try:
                await self._drain(kind)
                pause = await self._pause(kind)
            except Exception:  # the lane must outlive any trouble: log it, try again later
                log.exception("outbox %s: the runner failed; trying again", kind)
                pause = self._poll
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake[kind].wait(), pause)

    async def _drain(self, kind: str) -> None:
        """Run until nothing of `kind` is due. Each claim first waits `gather` seconds
        unless the last one took a full load: the rows that commits add meanwhile (one
        per message at a steady rate) are then claimed, handled and finished together —
        three transactions for many rows rather than three per row."""
        policy = self._handlers[kind].policy
        full = policy.batch * policy.concurrency
        handled: list[Handled] = []
        while True:
            if len(handled) < full:
                await asyncio.sleep(self._gather)
            handled = await self.run_once(kind)
            if not handled:
                return

    async def _pause(self, kind: str) -> float:
        due = await self._outbox.next_due(kind)
        if due is None:
            return self._poll
        return min(self._poll, max(0.0, due - self._clock() + 0.05))

    async def run_once(self, kind: str) -> list[Handled]:
        """Claim the due rows of `kind` (one batch per allowed concurrent task), handle
        them, record their outcomes; return what was handled (empty: nothing was due)."""
        handler = self._handlers[kind]
        policy = handler.policy
        now = int(self._clock())
        if not await self._outbox.has_due(kind, now):
            return []
        claimed = await self._outbox.claim(
            kind, now=now, lease=policy.lease, owner=self._owner,
            limit=policy.batch * policy.concurrency, max_attempts=policy.max_attempts,
        )  # fmt: skip
        if claimed.buried:
            await self._buried(handler, claimed.buried)
        items = claimed.items
        batches = [items[i : i + policy.batch] for i in range(0, len(items), policy.batch)]
        results = await asyncio.gather(*(self._handle(handler, b) for b in batches))
        handled = [h for batch in results for h in batch]
        if handled:
            await self._record(handled)
            dead = [h.item for h in handled if h.final == OutboxStatus.DEAD.value]
            if dead:
                await self._tell(handler, dead)
        return handled

    async def _buried(self, handler: Handler, items: list[OutboxItem]) -> None:
        for item in items:
            log.error(
                "outbox %s row %d dead-lettered: claimed %d times, never finished (its process "
                "died on it?); `mss outbox retry %d` to try again",
                item.kind, item.id, item.attempts, item.id,
            )  # fmt: skip
        await self._tell(handler, items)

    async def _tell(self, handler: Handler, items: list[OutboxItem]) -> None:
        """The handler tells whoever waits for dead-lettered rows (a DSN, an MDN)."""
        try:
            await handler.on_dead(items)
        except Exception:
            log.exception("outbox %s: telling of dead rows failed", handler.kind)

    async def _handle(self, handler: Handler, items: list[OutboxItem]) -> list[Handled]:
        try:
            outcomes = list(await handler.handle(items))
            if len(outcomes) != len(items):
                raise RuntimeError(f"{len(outcomes)} outcomes for {len(items)} rows")
        except Exception as exc:  # a bug or an outage: retry later, tell the operator
            log.exception("outbox %s: the handler failed on rows %s", handler.kind,
                          ",".join(str(i.id) for i in items))  # fmt: skip
            outcomes = [Retry(f"{type(exc).__name__}: {exc}") for _ in items]
        return [self._judge(handler.policy, i, o) for i, o in zip(items, outcomes, strict=True)]

    def _judge(self, policy: RetryPolicy, item: OutboxItem, outcome: Outcome) -> Handled:
        if isinstance(outcome, Done):
            return Handled(item, outcome, OutboxStatus.DONE.value)
        if isinstance(outcome, Failed):
            return Handled(item, outcome, OutboxStatus.FAILED.value)
        if isinstance(outcome, Defer):
            return Handled(item, outcome, OutboxStatus.PENDING.value)
        if item.attempts >= policy.max_attempts:
            return Handled(item, outcome, OutboxStatus.DEAD.value)
        return Handled(item, outcome, OutboxStatus.PENDING.value)

    async def _record(self, handled: Sequence[Handled]) -> None:
        now = int(self._clock())
        ends = [self._finish(h, now) for h in handled]
        await self._outbox.finish(ends, owner=self._owner, now=now)
        for h in handled:
            self._log(h)

    def _finish(self, handled: Handled, now: int) -> Finish:
        item, outcome = handled.item, handled.outcome
        if isinstance(outcome, Done):
            return Finish(item.id, handled.final, result=outcome.result)
        if isinstance(outcome, Defer):
            return Finish(item.id, handled.final, due_at=outcome.until, error=outcome.reason,
                          keep_attempts=True)  # fmt: skip
        policy = self._handlers[item.kind].policy
        due = now + int(policy.delay(item.attempts))
        return Finish(item.id, handled.final, due_at=due, error=outcome.error)

    def _log(self, handled: Handled) -> None:
        item, outcome = handled.item, handled.outcome
        if handled.final == OutboxStatus.DEAD.value:
            log.error(
                "outbox %s row %d dead-lettered after %d attempts: %s "
                "(see `mss outbox list`; `mss outbox retry %d` to try again)",
                item.kind, item.id, item.attempts, getattr(outcome, "error", ""), item.id,
            )  # fmt: skip
        elif isinstance(outcome, Defer):
            log.info("outbox %s row %d deferred until %d: %s",
                     item.kind, item.id, outcome.until, outcome.reason)  # fmt: skip
        elif isinstance(outcome, Retry):
            log.info("outbox %s row %d: attempt %d failed, retrying: %s",
                     item.kind, item.id, item.attempts, outcome.error)  # fmt: skip
        elif isinstance(outcome, Failed):
            log.info("outbox %s row %d failed: %s", item.kind, item.id, outcome.error)
