"""Events to tell a patient about (first access to their DMP, a new document): outbox
rows of kind `notification`, written in the transaction that caused them, sent after."""

from __future__ import annotations

import time
from typing import Any

from mss.store import outbox
from mss.store.outbox import NewItem
from mss.store.sql import Tx

NOTIFICATION = "notification"


def add_notification(tx: Tx, kind: str, ins: str, payload: dict[str, Any]) -> None:
    event = NewItem({"ins": ins, "event": kind, **payload})
    outbox.add(tx, NOTIFICATION, [event], int(time.time()))
