"""The relay queue: outbox rows of kind `relay`, one per recipient at another operator.

The relay handler (`delivery/outbound.py`) gets these rows from the outbox runner;
`mss queue list|retry|drop` shows and steers them in the words of a mail queue
(queued, sent, failed, dropped). Times are Unix seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mss.store import outbox
from mss.store.models import OutboxStatus
from mss.store.outbox import NewItem, OutboxItem
from mss.store.sql import Conn, Tx

RELAY = "relay"
# the queue's words for the outbox's statuses (a dead row is a failed delivery)
STATUS_WORDS = {
    OutboxStatus.PENDING.value: "queued",
    OutboxStatus.DONE.value: "sent",
    OutboxStatus.FAILED.value: "failed",
    OutboxStatus.DEAD.value: "failed",
    OutboxStatus.DROPPED.value: "dropped",
}


@dataclass(frozen=True, slots=True)
class QueuedRecipient:
    rcpt_to: str
    domain: str
    notify: str | None = None
    orcpt: str | None = None


@dataclass(frozen=True, slots=True)
class QueueEntry:
    id: int
    blob_id: int
    queue_id: str
    mail_from: str
    rcpt_to: str
    domain: str
    notify: str | None
    orcpt: str | None
    ret: str | None
    envid: str | None
    status: str
    attempts: int
    next_attempt: int
    expires: int
    created: int
    updated: int
    last_error: str | None


def entry_of(item: OutboxItem) -> QueueEntry:
    p = item.payload
    return QueueEntry(
        id=item.id, blob_id=item.blob_id or 0, queue_id=p.get("queue_id", ""),
        mail_from=p.get("mail_from", ""), rcpt_to=p.get("rcpt_to", ""),
        domain=p.get("domain", ""), notify=p.get("notify"), orcpt=p.get("orcpt"),
        ret=p.get("ret"), envid=p.get("envid"), status=STATUS_WORDS[item.status],
        attempts=item.attempts, next_attempt=item.due_at, expires=item.expires or 0,
        created=item.created, updated=item.updated, last_error=item.last_error,
    )  # fmt: skip


def enqueue(
    tx: Tx,
    *,
    blob_id: int,
    queue_id: str,
    mail_from: str,
    recipients: Sequence[QueuedRecipient],
    ret: str | None,
    envid: str | None,
    now: int,
    expires: int,
) -> None:
    """In the delivery transaction: one relay row per remote recipient."""
    envelope = {"queue_id": queue_id, "mail_from": mail_from, "ret": ret, "envid": envid}
    items = [
        NewItem(
            {
                **envelope,
                "rcpt_to": r.rcpt_to,
                "domain": r.domain,
                "notify": r.notify,
                "orcpt": r.orcpt,
            },
            blob_id=blob_id,
            expires=expires,
        )
        for r in recipients
    ]
    outbox.add(tx, RELAY, items, now)


def list_entries(conn: Conn, statuses: Sequence[str] | None = None) -> list[QueueEntry]:
    """The relay rows, in the queue's words (`queued`, `sent`, `failed`, `dropped`)."""
    wanted = [s for s, word in STATUS_WORDS.items() if word in statuses] if statuses else None
    return [entry_of(item) for item in outbox.list_items(conn, kinds=[RELAY], statuses=wanted)]


def retry_now(tx: Tx, ids: Sequence[int] | None, now: int) -> int:
    """Make queued messages due now (all of them when `ids` is None)."""
    return outbox.retry(tx, ids=ids, kinds=[RELAY], now=now)


def drop(tx: Tx, ids: Sequence[int], now: int) -> int:
    """Give up on queued rows without a DSN (an administrator's decision)."""
    return outbox.drop(tx, ids, kinds=[RELAY], now=now)
