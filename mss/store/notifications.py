"""Events to tell about, written in the transaction that caused them and sent after
(outbox rows): a patient's (kind `notification`: a new message, a document, a first
access, the profile, the account) and an applicative mailbox's webhook (kind
`webhook`, on new mail). They carry ids only, never what a message or a document
says: the notices are written from the event's name alone (`notify/templates.py`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from mss.store import outbox
from mss.store.outbox import NewItem
from mss.store.sql import RawStatement, Tx

NOTIFICATION, WEBHOOK = "notification", "webhook"
_WEBHOOK = RawStatement("SELECT url FROM mailbox_webhook WHERE address = ?")


def add_notification(tx: Tx, kind: str, ins: str, payload: dict[str, Any] | None = None) -> None:
    """An event of `kind` (notify.base.EVENTS) for the patient `ins`."""
    event = NewItem({"ins": ins, "event": kind, **(payload or {})})
    outbox.add(tx, NOTIFICATION, [event], int(time.time()))


def add_mail_webhooks(tx: Tx, copies: Sequence[tuple[str, int]]) -> None:
    """New mail in these mailboxes (address, UID): a webhook call for each that has one."""
    now = int(time.time())
    calls = [
        NewItem({"mailbox": address, "uid": uid, "at": now})
        for address, uid in copies
        if _WEBHOOK.first(tx.conn, address) is not None
    ]
    outbox.add(tx, WEBHOOK, calls, now)
