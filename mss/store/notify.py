"""The notifications' tables: patients' choices, push subscriptions, failing contacts,
the log of every notice, and the webhooks of applicative mailboxes.

The log is what a patient's history shows and what `mss notify list` prints: one row
per notice (or per event that made none: coalesced, no contact), its status kept up
to date as the notice goes out. Destinations are masked there: the log is read by
operators, and a phone number or an address is personal data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, insert, select

from mss.store.models import (
    contact_status_table,
    mailbox_webhook_table,
    notify_log_table,
    notify_preference_table,
    push_subscription_table,
)
from mss.store.sql import Conn, RawStatement, Tx

lg = notify_log_table.c
ACTIVE_STATUSES = ("queued", "sent")  # what coalescing and the rate limit count


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    endpoint: str
    p256dh: str
    auth: str


@dataclass(frozen=True, slots=True)
class Recipient:
    """What deciding a patient's notices needs, read at once."""

    ins: str
    profile_status: str
    email: str | None
    phone: str | None
    preferences: dict[tuple[str, str], bool] = field(default_factory=dict)
    subscriptions: list[Subscription] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)  # destinations that bounced


@dataclass(frozen=True, slots=True)
class LogEntry:
    id: int
    ins: str
    event_id: int
    notice_id: str
    event: str
    category: str
    channel: str
    destination: str
    status: str
    detail: str
    created: int
    at: int
    document_id: int | None = None  # what a `new_document` notice is about


# The statements of every notice are plain SQL (see RawStatement: SQLAlchemy Core
# costs ten times the statement).
_PATIENT = RawStatement("SELECT profile_status, email, phone FROM patient WHERE ins = ?")
_PREFERENCES = RawStatement(
    "SELECT category, channel, enabled FROM notify_preference WHERE ins = ?"
)
_SUBSCRIPTIONS = RawStatement(
    "SELECT id, endpoint, p256dh, auth FROM push_subscription WHERE ins = ? ORDER BY id"
)
_FAILING = RawStatement("SELECT destination FROM contact_status WHERE destination = ? AND failing")
# (no ORDER BY: SQLite would then prefer the history's index and read every line of
# the day, where ix_notify_log_active reads only the notices queued or sent)
_ACTIVE = RawStatement(
    "SELECT at FROM notify_log WHERE ins = ? AND status IN ('queued', 'retrying', 'sent')"
    " AND at >= ?"
)
_ACTIVE_IN = RawStatement(
    "SELECT at FROM notify_log WHERE ins = ? AND status IN ('queued', 'retrying', 'sent')"
    " AND at >= ? AND category = ?"
)
_SET_STATUS = RawStatement(
    "UPDATE notify_log SET status = ?, detail = ?, at = ? WHERE notice_id = ?"
)
_LOG = RawStatement(
    "INSERT INTO notify_log (ins, event_id, notice_id, event, category, channel, destination, "
    "status, detail, created, at, document_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_LOG_FIELDS = ("ins", "event_id", "notice_id", "event", "category", "channel", "destination",
               "status", "detail", "created", "at")  # fmt: skip


def mask(destination: str) -> str:
    """`m***@exemple.fr`, `+336******78`: enough to tell destinations apart."""
    if "@" in destination:
        local, _, domain = destination.partition("@")
        return f"{local[:1]}***@{domain}"
    if destination.startswith("+") and len(destination) > 6:
        return destination[:4] + "*" * (len(destination) - 6) + destination[-2:]
    return destination[:12] + ("…" if len(destination) > 12 else "")


# --- reading ------------------------------------------------------------------------------------


def recipient(conn: Conn, ins: str) -> Recipient | None:
    row = _PATIENT.first(conn, ins)
    if row is None:
        return None
    email = row[1].strip().lower() if row[1] else None
    phone = row[2].strip() if row[2] else None
    return Recipient(
        ins, row[0], email, phone, preferences(conn, ins), subscriptions(conn, ins),
        failing(conn, [d for d in (email, phone) if d]),
    )  # fmt: skip


def preferences(conn: Conn, ins: str) -> dict[tuple[str, str], bool]:
    return {(r[0], r[1]): bool(r[2]) for r in _PREFERENCES.all(conn, ins)}


def subscriptions(conn: Conn, ins: str) -> list[Subscription]:
    return [Subscription(int(r[0]), r[1], r[2], r[3]) for r in _SUBSCRIPTIONS.all(conn, ins)]


def subscription(conn: Conn, subscription_id: int) -> Subscription | None:
    t = push_subscription_table.c
    row = conn.execute(
        select(t.id, t.endpoint, t.p256dh, t.auth).where(t.id == subscription_id)
    ).first()
    return None if row is None else Subscription(row.id, row.endpoint, row.p256dh, row.auth)


def failing(conn: Conn, destinations: Sequence[str]) -> set[str]:
    return {d for d in destinations if _FAILING.first(conn, d) is not None}


def active_since(conn: Conn, ins: str, since: int, category: str | None = None) -> list[int]:
    """When notices (queued, retrying or sent) went to this patient since `since`, oldest first."""
    if category is None:
        return sorted(int(r[0]) for r in _ACTIVE.all(conn, ins, since))
    return sorted(int(r[0]) for r in _ACTIVE_IN.all(conn, ins, since, category))


def log_entries(
    conn: Conn,
    *,
    ins: str | None = None,
    statuses: Sequence[str] | None = None,
    limit: int = 200,
) -> list[LogEntry]:
    query = select(*notify_log_table.c).order_by(lg.id.desc()).limit(limit)
    if ins is not None:
        query = query.where(lg.ins == ins)
    if statuses:
        query = query.where(lg.status.in_(list(statuses)))
    return [LogEntry(**row._mapping) for row in conn.execute(query)]


def entry_of_notice(conn: Conn, notice_id: str) -> LogEntry | None:
    row = conn.execute(select(*notify_log_table.c).where(lg.notice_id == notice_id)).first()
    return None if row is None else LogEntry(**row._mapping)


def channel_stats(conn: Conn, since: int) -> list[tuple[str, str, int]]:
    """(channel, status, count) of the notices logged since `since`."""
    rows = conn.execute(
        select(lg.channel, lg.status, func.count()).where(lg.at >= since)
        .group_by(lg.channel, lg.status)
    )  # fmt: skip
    return [(r[0], r[1], int(r[2])) for r in rows]


def sent_lags(conn: Conn, since: int, limit: int = 10000) -> dict[str, list[int]]:
    """Seconds from event to notice of the notices sent since `since`, per channel."""
    rows = conn.execute(
        select(lg.channel, lg.at - lg.created)
        .where(lg.at >= since, lg.status == "sent")
        .order_by(lg.id.desc())
        .limit(limit)
    )
    out: dict[str, list[int]] = {}
    for channel, lag in rows:
        out.setdefault(channel, []).append(int(lag))
    return out


def webhook(conn: Conn, address: str) -> tuple[str, list[str]] | None:
    t = mailbox_webhook_table.c
    row = conn.execute(select(t.url, t.secrets).where(t.address == address)).first()
    return None if row is None else (row.url, row.secrets.split())


# --- writing ------------------------------------------------------------------------------------


def log(tx: Tx, rows: Sequence[dict[str, Any]]) -> None:
    _LOG.many(tx.conn, [[*(row[f] for f in _LOG_FIELDS), row.get("document_id")] for row in rows])


def set_status(tx: Tx, notice_id: str, status: str, detail: str, now: int) -> None:
    _SET_STATUS.run(tx.conn, status, detail[:2000], now, notice_id)


def mark_failing(tx: Tx, destination: str, reason: str, now: int) -> None:
    t = contact_status_table
    tx.conn.execute(delete(t).where(t.c.destination == destination))
    tx.conn.execute(
        insert(t).values(destination=destination, failing=True, reason=reason[:2000], updated=now)
    )


def clear_failing(tx: Tx, destination: str) -> None:
    t = contact_status_table
    tx.conn.execute(delete(t).where(t.c.destination == destination))


def set_preference(tx: Tx, ins: str, category: str, channel: str, enabled: bool) -> None:
    t = notify_preference_table
    key = (t.c.ins == ins) & (t.c.category == category) & (t.c.channel == channel)
    tx.conn.execute(delete(t).where(key))
    tx.conn.execute(insert(t).values(ins=ins, category=category, channel=channel, enabled=enabled))


def add_subscription(tx: Tx, ins: str, endpoint: str, p256dh: str, auth: str, now: int) -> None:
    """The patient's subscription of this browser (replacing their own of the same
    endpoint; another patient's subscription of the same browser is theirs: kept)."""
    t = push_subscription_table
    tx.conn.execute(delete(t).where((t.c.ins == ins) & (t.c.endpoint == endpoint)))
    tx.conn.execute(
        insert(t).values(ins=ins, endpoint=endpoint, p256dh=p256dh, auth=auth, created=now)
    )


def remove_subscription(tx: Tx, subscription_id: int) -> None:
    t = push_subscription_table
    tx.conn.execute(delete(t).where(t.c.id == subscription_id))


def remove_webhook(tx: Tx, address: str) -> None:
    t = mailbox_webhook_table
    tx.conn.execute(delete(t).where(t.c.address == address))


def set_webhook(tx: Tx, address: str, url: str, secrets: Sequence[str], now: int) -> None:
    t = mailbox_webhook_table
    tx.conn.execute(delete(t).where(t.c.address == address))
    tx.conn.execute(
        insert(t).values(address=address, url=url, secrets=" ".join(secrets), created=now)
    )
