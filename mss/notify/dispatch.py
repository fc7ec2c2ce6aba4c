"""The outbox handlers of the notifications: events become notices, notices go out.

- `EventHandler` (kind `notification`): an event written with its cause (a message
  to a patient, a document deposited, a first consultation, the profile…) is turned
  into notices by `decide.py`, each an outbox row of its channel's kind
  (`notice_email`, `notice_sms`, `notice_push`), logged `queued` — all in the
  transaction that completes the event row. Coalesced events, patients without a
  usable contact and switched-off categories are logged too: every event leaves a
  line in the patient's delivery log.
- `NoticeHandler` (one per channel): sends one notice through its `Channel`; sent,
  it is logged `sent`; refused for good, the destination is marked failing (a push
  subscription is deleted), the log says `failed`, and the notice falls back to the
  next channel of the patient; a temporary failure retries with the runner's backoff
  (`retrying` in the log). SMS respects quiet hours: deferred, not dropped
  (but for account notices: a login code must not wait for the morning).

Each notice keeps its idempotency id from the first attempt to the last (the
e-mail's Message-ID, the SMS gateway's reference, the push payload): a receiver
can drop the repeats that at-least-once delivery may bring after a crash.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from mss.notify.base import EVENTS, Category, Channel, ChannelError, ChannelName, Notice
from mss.notify.decide import Decision, Rules, Target, decide
from mss.notify.templates import render
from mss.store import notify as notes
from mss.store import outbox
from mss.store.api import Store
from mss.store.outbox import NewItem, OutboxItem
from mss.store.ports import Defer, Done, Failed, Outcome, Retry, RetryPolicy
from mss.store.sql import Tx

log = logging.getLogger(__name__)
EVENT = "notification"


def notice_kind(channel: ChannelName | str) -> str:
    return f"notice_{ChannelName(channel).value}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Texts:
    link: str  # the patient space's URL, in every notice
    service: str = "Mon espace santé"


class EventHandler:
    """Kind `notification`: one event → its notices (or the reason there are none)."""

    kind = EVENT
    policy = RetryPolicy(base=10, cap=600, max_attempts=20, lease=120, batch=50)

    def __init__(
        self, store: Store, rules: Rules, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._rules = rules
        self._clock = clock

    async def handle(self, items: Sequence[OutboxItem]) -> list[Outcome]:
        """A batch of events: decided in one read, recorded in one transaction."""
        now = int(self._clock())
        decisions = await self._store.read(lambda c: self._decide_all(c, items, now))
        to_record = [(i, d) for i, d in zip(items, decisions, strict=True)
                     if isinstance(d, Decision) and d.defer_until is None]  # fmt: skip
        if to_record:
            await self._store.write(lambda tx: self._record_all(tx, to_record, now))
        return [_outcome(d) for d in decisions]

    async def on_dead(self, items: Sequence[OutboxItem]) -> None:
        """Nothing to tell: the runner's log line names the events given up."""

    def _decide_all(self, conn: Any, items: Sequence[OutboxItem],
                    now: int) -> list[Decision | Outcome]:  # fmt: skip
        """Each event's decision; notices decided earlier in the batch count for the
        coalescing and the daily limit of the later ones."""
        batch: dict[tuple[str, str], list[int]] = {}
        out: list[Decision | Outcome] = []
        for item in items:
            decision = self._decide_one(conn, item, now, batch)
            if isinstance(decision, Decision) and decision.targets:
                ins, category = item.payload["ins"], EVENTS[item.payload["event"]].value
                batch.setdefault((ins, category), []).append(now)
                batch.setdefault((ins, ""), []).append(now)
            out.append(decision)
        return out

    def _decide_one(self, conn: Any, item: OutboxItem, now: int,
                    batch: dict[tuple[str, str], list[int]]) -> Decision | Outcome:  # fmt: skip
        ins, event = item.payload.get("ins", ""), item.payload.get("event", "")
        if event not in EVENTS:
            return Failed(f"unknown event {event!r}")
        who = notes.recipient(conn, ins)
        if who is None:
            return Failed(f"no patient with INS {ins}")
        category = EVENTS[event].value
        recent = notes.active_since(conn, ins, now - 86400) + batch.get((ins, ""), [])
        window = self._rules.coalesce_seconds
        same = (notes.active_since(conn, ins, now - window, category)
                + batch.get((ins, category), [])) if window else []  # fmt: skip
        return decide(event, who, rules=self._rules, now=now, recent=recent,
                      recent_same=same, asked=item.payload.get("channel"))  # fmt: skip

    def _record_all(self, tx: Tx, decided: list[tuple[OutboxItem, Decision]], now: int) -> None:
        for item, decision in decided:
            self._record(tx, item, decision, now)

    def _record(self, tx: Tx, item: OutboxItem, decision: Decision, now: int) -> None:
        """The notices and their log lines, with the event's end: one transaction."""
        base = _log_row(item, now)
        if not decision.targets:
            notes.log(tx, [{**base, "notice_id": f"{item.id}", "status": decision.status,
                            "detail": decision.detail}])  # fmt: skip
        rows, lines = [], []
        for n, target in enumerate(decision.targets):
            notice_id = f"{item.id}-{target.channel.value}-{n}"
            rows.append((target.channel, _notice_payload(item, notice_id, target)))
            lines.append(
                {
                    **base,
                    "notice_id": notice_id,
                    "channel": target.channel.value,
                    "destination": notes.mask(target.destination),
                    "status": "queued",
                }
            )
        notes.log(tx, lines)
        for channel, payload in rows:
            outbox.add(tx, notice_kind(channel), [NewItem(payload)], now)
        outbox.complete(tx, item, decision.status, now=now)


def _outcome(decision: Decision | Outcome) -> Outcome:
    if not isinstance(decision, Decision):
        return decision
    if decision.defer_until is not None:
        return Defer(decision.defer_until, decision.detail)
    if decision.targets:
        return Done(f"{len(decision.targets)} notice(s)")
    return Done(decision.status)


def _log_row(item: OutboxItem, now: int) -> dict[str, Any]:
    event = item.payload["event"]
    return {
        "ins": item.payload["ins"], "event_id": item.id, "event": event,
        "category": EVENTS[event].value, "channel": "", "destination": "", "detail": "",
        "created": item.created, "at": now, "document_id": _document_of(item.payload),
    }  # fmt: skip


def _document_of(payload: dict[str, Any]) -> int | None:
    """The document an event is about (`new_document`), kept in its log lines."""
    found = payload.get("document_id")
    return found if isinstance(found, int) and not isinstance(found, bool) else None


def _notice_payload(item: OutboxItem, notice_id: str, target: Target) -> dict[str, Any]:
    return {
        "notice": notice_id, "event_id": item.id, "ins": item.payload["ins"],
        "event": item.payload["event"], "channel": target.channel.value,
        "destination": target.destination, "code": item.payload.get("code", ""),
        "fallback": [list(f) for f in target.fallback], "created": item.created,
        "document_id": _document_of(item.payload),
    }  # fmt: skip


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Hours when no SMS is sent (e.g. 21:00–08:00, Europe/Paris): deferred, not dropped."""

    start: dt.time
    end: dt.time
    zone: ZoneInfo

    @classmethod
    def parse(cls, text: str, zone: str) -> QuietHours | None:
        if not text:
            return None
        start, _, end = text.partition("-")
        return cls(dt.time.fromisoformat(start.strip()), dt.time.fromisoformat(end.strip()),
                   ZoneInfo(zone))  # fmt: skip

    def until(self, now: float) -> int | None:
        """The end of the quiet hours `now` falls in (Unix time), or None."""
        local = dt.datetime.fromtimestamp(now, self.zone)
        t = local.time()
        inside = (self.start <= t or t < self.end) if self.start > self.end else (
            self.start <= t < self.end)  # fmt: skip
        if not inside:
            return None
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end += dt.timedelta(days=1)
        return int(end.timestamp())


class NoticeHandler:
    """Kind `notice_<channel>`: one notice through one channel."""

    def __init__(
        self,
        store: Store,
        channel: Channel,
        texts: Texts,
        *,
        quiet: QuietHours | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._channel = channel
        self._texts = texts
        self._quiet = quiet
        self._clock = clock
        self.kind = notice_kind(channel.name)
        # temporary failures: retried with backoff for a day and more
        self.policy = RetryPolicy(base=30, cap=3600, max_attempts=30, lease=300, batch=10,
                                  concurrency=4)  # fmt: skip

    async def handle(self, items: Sequence[OutboxItem]) -> list[Outcome]:
        """The batch's notices go out at once; those sent are recorded together."""
        outcomes = await asyncio.gather(*(self._one(item) for item in items))
        sent = [(i, o.result) for i, o in zip(items, outcomes, strict=True)
                if isinstance(o, Done) and o.result.startswith("sent")]  # fmt: skip
        if sent:
            await self._store.write(lambda tx: self._sent_all(tx, sent))
        return list(outcomes)

    async def on_dead(self, items: Sequence[OutboxItem]) -> None:
        for item in items:
            await self._give_up(item)

    async def _give_up(self, item: OutboxItem) -> None:
        """Temporary failures for too long: the channel was down, not the destination
        wrong (it is not marked failing); the next channel is tried."""
        reason = "gave up after retries"
        await self._store.write(lambda tx: self._failed(tx, item, reason, blame=False))

    async def _one(self, item: OutboxItem) -> Outcome:
        until = self._quiet.until(self._clock()) if self._quiet else None
        if until is not None and EVENTS[item.payload["event"]] is not Category.ACCOUNT:
            return Defer(until, "quiet hours")
        extra = await self._extra(item)
        if extra is None:
            return Done("the push subscription is gone")
        notice = self.notice(item, extra)
        try:
            reference = await self._channel.send(notice)
        except ChannelError as exc:
            return await self._refused(item, exc)
        return Done(f"sent{f' ({reference})' if reference else ''}")

    async def _extra(self, item: OutboxItem) -> dict[str, str] | None:
        """A push notice needs its subscription (endpoint, keys), read when it goes."""
        if item.payload["channel"] != ChannelName.PUSH.value:
            return {}
        sub_id = int(item.payload["destination"])
        found = await self._store.read(lambda c: notes.subscription(c, sub_id))
        if found is None:
            return None
        return {"endpoint": found.endpoint, "p256dh": found.p256dh, "auth": found.auth}

    def notice(self, item: OutboxItem, extra: dict[str, str] | None = None) -> Notice:
        p = item.payload
        channel = ChannelName(p["channel"])
        subject, text = render(p["event"], channel, link=self._texts.link,
                               service=self._texts.service, code=p.get("code", ""))  # fmt: skip
        return Notice(
            id=p["notice"], ins=p["ins"], event=p["event"], channel=channel,
            destination=p["destination"], subject=subject, text=text, link=self._texts.link,
            extra=extra or {},
        )  # fmt: skip

    def _sent_all(self, tx: Tx, sent: list[tuple[OutboxItem, str]]) -> None:
        now = int(self._clock())
        for item, detail in sent:
            notes.set_status(tx, item.payload["notice"], "sent", detail, now)
            outbox.complete(tx, item, detail, now=now)

    async def _refused(self, item: OutboxItem, exc: ChannelError) -> Outcome:
        if not exc.permanent:
            now = int(self._clock())
            await self._store.write(lambda tx: notes.set_status(
                tx, item.payload["notice"], "retrying", exc.reason, now))  # fmt: skip
            return Retry(exc.reason)
        await self._store.write(lambda tx: self._failed(tx, item, exc.reason))
        return Failed(exc.reason)

    def _failed(self, tx: Tx, item: OutboxItem, reason: str, *, blame: bool = True) -> None:
        """Refused for good: the destination is failing (`blame`), the next channel is
        tried."""
        p, now = item.payload, int(self._clock())
        notes.set_status(tx, p["notice"], "failed", reason, now)
        if blame and p["channel"] == ChannelName.PUSH.value:
            notes.remove_subscription(tx, int(p["destination"]))
        elif blame:
            notes.mark_failing(tx, p["destination"], reason, now)
        if p.get("fallback"):
            _fall_back(tx, item, now)


def _fall_back(tx: Tx, item: OutboxItem, now: int) -> None:
    p = item.payload
    (channel, destination), *rest = p["fallback"]
    notice_id = f"{p['notice']}-{channel}"
    payload = {**p, "notice": notice_id, "channel": channel, "destination": destination,
               "fallback": rest}  # fmt: skip
    line = {
        "ins": p["ins"], "event_id": p["event_id"], "notice_id": notice_id, "event": p["event"],
        "category": EVENTS[p["event"]].value, "channel": channel,
        "destination": notes.mask(destination), "status": "queued",
        "detail": f"fallback after {p['channel']}", "created": p["created"], "at": now,
        "document_id": _document_of(p),
    }  # fmt: skip
    notes.log(tx, [line])
    outbox.add(tx, notice_kind(channel), [NewItem(payload)], now)
