"""The outbox handler of kind `webhook`: an applicative (APP) mailbox's software hears
of new mail by a signed call (Standard Webhooks), retried with backoff for more than
a day. The call says which mailbox and which UID, nothing of the message: the software
fetches it over IMAP with its own credentials.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from mss.notify.base import ChannelError
from mss.notify.webhooks import WebhookSender
from mss.store import notify as notes
from mss.store.api import Store
from mss.store.outbox import OutboxItem
from mss.store.ports import Done, Failed, Outcome, Retry, RetryPolicy


def body_of(item: OutboxItem) -> bytes:
    p = item.payload
    at = dt.datetime.fromtimestamp(int(p.get("at", item.created)), dt.UTC)
    event = {
        "type": "message.received",
        "timestamp": at.isoformat().replace("+00:00", "Z"),
        "data": {"mailbox": p["mailbox"], "uid": p["uid"]},
    }
    return json.dumps(event, separators=(",", ":")).encode()


class WebhookHandler:
    kind = "webhook"
    # 30 s doubling to an hour, 40 attempts: more than a day of retries
    policy = RetryPolicy(base=30, cap=3600, max_attempts=40, lease=120, batch=20, concurrency=2)

    def __init__(self, store: Store, sender: WebhookSender) -> None:
        self._store = store
        self._sender = sender

    async def handle(self, items: Sequence[OutboxItem]) -> list[Outcome]:
        return [await self._call(item) for item in items]

    async def on_dead(self, items: Sequence[OutboxItem]) -> None:
        """Nothing else to tell: the software polls IMAP anyway (and the log says it)."""

    async def _call(self, item: OutboxItem) -> Outcome:
        address = item.payload["mailbox"]
        hook = await self._store.read(lambda c: notes.webhook(c, address))
        if hook is None:
            return Done("the mailbox has no webhook any more")
        url, secrets = hook
        try:
            await self._sender.send(url, f"msg_{item.id}", body_of(item), secrets)
        except ChannelError as exc:
            return Failed(exc.reason) if exc.permanent else Retry(exc.reason)
        return Done("called")
