"""What the patient space's record part reads that no other module asks: the messages of
one account, for the export of the patient's own data."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from mss.store.models import account_table, mailbox_table, message_table

a, mb, m = account_table.c, mailbox_table.c, message_table.c


@dataclass(frozen=True, slots=True)
class StoredMessage:
    mailbox: str
    uid: int
    internal_date: int
    blob_id: int


def messages_of(conn: Connection, address: str) -> list[StoredMessage]:
    """Every message in every mailbox of the account `address`, by mailbox and UID."""
    rows = conn.execute(
        select(mb.name, m.uid, m.internal_date, m.blob_id)
        .join(mailbox_table, mb.id == m.mailbox_id)
        .join(account_table, a.id == mb.account_id)
        .where(a.address == address)
        .order_by(mb.name, m.uid)
    )
    return [StoredMessage(*row) for row in rows]
