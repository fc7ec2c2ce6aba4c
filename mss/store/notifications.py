"""Events to tell a patient about (first access to their DMP, a new document), written
in the transaction that caused them and sent later (`notification_outbox`)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import insert

from mss.store.db import Tx
from mss.store.models import notification_outbox_table


def add_notification(tx: Tx, kind: str, ins: str, payload: dict[str, Any]) -> None:
    tx.conn.execute(
        insert(notification_outbox_table).values(
            kind=kind, ins=ins, payload=json.dumps(payload, ensure_ascii=False)
        )
    )
