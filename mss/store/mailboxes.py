"""Mailboxes and the messages in them: creation, delivery, and reading back.

Delivery is split in two so the CPU work stays out of the writer thread:
`prepare_message` (parse, build ENVELOPE/BODYSTRUCTURE JSON, encrypt) runs in
the caller; `insert_copies` (blob row, one UID per target mailbox, message rows)
runs inside a group commit. UIDs and modseqs come from one `UPDATE … RETURNING`
per mailbox, which also serialises concurrent writers on PostgreSQL.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Connection, func, insert, select

from mss.core.mime import ParsedMessage, Part, parse_message, searchable_headers
from mss.errors import MssError, NotFoundError
from mss.store.blobs import EncryptedBlob
from mss.store.models import account_table, mailbox_table, message_table, subscription_table
from mss.store.sql import RawStatement, Refused, Tx

if TYPE_CHECKING:
    from mss.store.ports import BlobStore

INBOX = "INBOX"
# Created for every account (RFC 6154 SPECIAL-USE).
DEFAULT_MAILBOXES: tuple[tuple[str, str | None], ...] = (
    (INBOX, None),
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
)


@dataclass(frozen=True, slots=True)
class PreparedMessage:
    """Everything stored about a message, computed before the transaction."""

    blob: EncryptedBlob
    size: int
    message_id: str | None
    in_reply_to: str | None
    references: str | None
    subject: str | None
    sent_date: int | None
    envelope: str
    body_structure: str
    mss_headers: str | None = None
    header_text: str | None = None

    def row(
        self, target: Target, uid: int, modseq: int, internal_date: int, blob_id: int
    ) -> tuple[object, ...]:
        """The values of `_INSERT_MESSAGE` for one copy."""
        return (
            target.mailbox_id, uid, modseq, target.flags, target.keywords, internal_date,
            self.sent_date, self.size, blob_id, self.message_id, self.in_reply_to,
            self.references, self.subject, self.envelope, self.body_structure, self.mss_headers,
            self.header_text,
        )  # fmt: skip


class Target(NamedTuple):
    mailbox_id: int
    flags: int = 0
    keywords: str | None = None


class StoredMessage(NamedTuple):
    mailbox_id: int
    uid: int
    modseq: int


class Delivered(NamedTuple):
    """A stored message: its blob (shared by every copy) and its copies."""

    blob_id: int
    copies: list[StoredMessage]


@dataclass(frozen=True, slots=True)
class MailboxChanged:
    """Published after commit: new messages (or flag changes) in a mailbox."""

    mailbox_id: int
    uidnext: int
    highestmodseq: int


def _sent_date(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def prepare_message(
    raw: bytes, blobs: BlobStore, parsed: ParsedMessage | None = None
) -> PreparedMessage:
    """Parse (unless given the parse of `raw`) and encrypt `raw`: the CPU part of a
    delivery, done outside the writer."""
    parsed = parsed or parse_message(raw)
    return PreparedMessage(
        blob=blobs.seal(raw),
        size=len(raw),
        message_id=parsed.message_id,
        in_reply_to=" ".join(parsed.in_reply_to) or None,
        references=" ".join(parsed.references) or None,
        subject=parsed.subject,
        sent_date=_sent_date(parsed.headers.get("Date")),
        envelope=json.dumps(parsed.envelope.to_json(), separators=(",", ":")),
        body_structure=json.dumps(parsed.body.to_json(), separators=(",", ":")),
        mss_headers=_mss_headers(parsed.headers.fields),
        header_text=searchable_headers(parsed.headers),
    )


def _mss_headers(fields: list[tuple[str, str]]) -> str | None:
    """The X-MSS-* fields (ANS Référentiel #2) as a JSON object, names upper-cased."""
    found = {name.upper(): value for name, value in fields if name.upper().startswith("X-MSS-")}
    return json.dumps(found, ensure_ascii=False, sort_keys=True) if found else None


_NEXT_UIDVALIDITY = RawStatement(
    "UPDATE account SET last_uidvalidity = CASE WHEN last_uidvalidity + ? > ? "
    "THEN last_uidvalidity + ? ELSE ? END WHERE id = ? RETURNING last_uidvalidity"
)


def allocate_uidvalidity(tx: Tx, account_id: int, count: int = 1) -> int:
    """The first of `count` UIDVALIDITY values, each greater than any the account had.

    Time-based (Unix seconds), but never repeated: a mailbox deleted and created
    again gets a greater value (RFC 3501 §2.3.1.1), even within the same second.
    """
    now = int(time.time()) + count - 1
    row = _NEXT_UIDVALIDITY.first(tx.conn, count, now, count, now, account_id)
    if row is None:
        raise NotFoundError(f"account {account_id} does not exist")
    return int(row[0]) - count + 1


def create_default_mailboxes(tx: Tx, account_id: int) -> None:
    first = allocate_uidvalidity(tx, account_id, len(DEFAULT_MAILBOXES))
    tx.conn.execute(
        insert(mailbox_table),
        [
            {"account_id": account_id, "name": name, "special_use": use, "uidvalidity": first + i}
            for i, (name, use) in enumerate(DEFAULT_MAILBOXES)
        ],
    )
    tx.conn.execute(
        insert(subscription_table),
        [{"account_id": account_id, "name": name} for name, _use in DEFAULT_MAILBOXES],
    )


def mailbox_id(conn: Connection, account_id: int, name: str) -> int:
    row = conn.execute(
        select(mailbox_table.c.id).where(
            mailbox_table.c.account_id == account_id, mailbox_table.c.name == name
        )
    ).first()
    if row is None:
        raise NotFoundError(f"mailbox {name!r} does not exist")
    return int(row.id)


def inbox_ids(conn: Connection, addresses: Sequence[str]) -> dict[str, int]:
    """INBOX id of each known address (addresses already normalised)."""
    rows = conn.execute(
        select(account_table.c.address, mailbox_table.c.id)
        .join(mailbox_table, mailbox_table.c.account_id == account_table.c.id)
        .where(account_table.c.address.in_(list(addresses)), mailbox_table.c.name == INBOX)
    )
    return {row.address: int(row.id) for row in rows}


@dataclass(frozen=True, slots=True)
class DeliveryItem:
    """One message to store in one or more mailboxes, within a bulk write."""

    message: PreparedMessage
    targets: Sequence[Target]
    internal_date: int
    blobs: BlobStore  # where the message's body goes
    # Runs in the same transaction once the copies exist (conversations, queue, outbox…).
    also: Callable[[Tx, Delivered], None] | None = None
    # Runs first, in the same transaction, before anything is written; raising an
    # MssError refuses this item alone (the conversation rules decide here).
    decide: Callable[[Tx], None] | None = None


_INSERT_MESSAGE = RawStatement(
    "INSERT INTO message (mailbox_id, uid, modseq, flags, keywords, internal_date, sent_date, "
    "size, blob_id, message_id, in_reply_to, refs, subject, envelope, body_structure, "
    "mss_headers, header_text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _allocate_uids(
    tx: Tx, counts: dict[int, int], sizes: dict[int, int]
) -> dict[int, tuple[int, int]]:
    """Reserve `counts[box]` UIDs and modseqs in each mailbox with one statement, which
    also adds the messages and their `sizes[box]` bytes to the mailbox's usage (quotas).

    Returns, per mailbox, the first UID and first modseq reserved. The row locks
    taken by the UPDATE serialise concurrent writers (PostgreSQL, several
    processes); SQLite's writer already holds the database lock.
    """
    boxes = sorted(counts)
    case = " ".join("WHEN ? THEN ?" for _ in boxes)
    params: list[int] = []
    for per_box in (counts, counts, counts, sizes):
        for box in boxes:
            params += [box, per_box[box]]
    params += boxes
    rows = RawStatement(
        f"UPDATE mailbox SET uidnext = uidnext + CASE id {case} END, "
        f"highestmodseq = highestmodseq + CASE id {case} END, "
        f"message_count = message_count + CASE id {case} END, "
        f"message_bytes = message_bytes + CASE id {case} END "
        f"WHERE id IN ({', '.join('?' for _ in boxes)}) "
        "RETURNING id, uidnext, highestmodseq"
    ).all(tx.conn, *params)
    if len(rows) != len(boxes):
        missing = set(boxes) - {row[0] for row in rows}
        raise NotFoundError(f"mailbox {sorted(missing)[0]} does not exist")
    allocated: dict[int, tuple[int, int]] = {}
    for box, uidnext, highestmodseq in rows:
        allocated[box] = (uidnext - counts[box], highestmodseq - counts[box] + 1)
        tx.after_commit(MailboxChanged(box, uidnext, highestmodseq))
    return allocated


_MAILBOX_KEYWORDS = RawStatement("SELECT keywords FROM mailbox WHERE id = ?")
_SET_MAILBOX_KEYWORDS = RawStatement("UPDATE mailbox SET keywords = ? WHERE id = ?")


def remember_keywords(tx: Tx, mailbox_id: int, keywords: Iterable[str]) -> None:
    """Add keywords to the mailbox's list (what SELECT announces in FLAGS)."""
    wanted = set(keywords)
    if not wanted:
        return
    current = _MAILBOX_KEYWORDS.scalar(tx.conn, mailbox_id)
    known = set(current.split()) if current else set()
    if not wanted <= known:
        _SET_MAILBOX_KEYWORDS.run(tx.conn, " ".join(sorted(known | wanted)), mailbox_id)


def deliver_many(tx: Tx, items: list[DeliveryItem]) -> list[Delivered | Refused]:
    """Bulk write: store each item's blob once and a copy in each of its mailboxes.

    Each item's `decide` runs first, before anything is written: an item it refuses
    (a `Rejection`, e.g. a patient writing outside a conversation) is left out and
    gets its error back, while the other items of the batch commit."""
    refused: dict[int, Refused] = {}
    for index, item in enumerate(items):
        if item.decide is not None:
            try:
                item.decide(tx)
            except MssError as exc:
                refused[index] = Refused(exc)
    live = [item for index, item in enumerate(items) if index not in refused]
    stored = iter(_store_all(tx, live) if live else [])
    return [refused[i] if i in refused else next(stored) for i in range(len(items))]


def _store_all(tx: Tx, items: list[DeliveryItem]) -> list[Delivered]:
    blob_ids = items[0].blobs.put(tx, [item.message.blob for item in items])
    counts: dict[int, int] = {}
    sizes: dict[int, int] = {}
    for item in items:
        for target in item.targets:
            counts[target.mailbox_id] = counts.get(target.mailbox_id, 0) + 1
            sizes[target.mailbox_id] = sizes.get(target.mailbox_id, 0) + item.message.size
    next_ids = _allocate_uids(tx, counts, sizes) if counts else {}
    rows: list[tuple[object, ...]] = []
    results: list[Delivered] = []
    for item, blob_id in zip(items, blob_ids, strict=True):
        stored: list[StoredMessage] = []
        for target in item.targets:
            uid, modseq = next_ids[target.mailbox_id]
            next_ids[target.mailbox_id] = (uid + 1, modseq + 1)
            stored.append(StoredMessage(target.mailbox_id, uid, modseq))
            rows.append(item.message.row(target, uid, modseq, item.internal_date, blob_id))
        results.append(Delivered(blob_id, stored))
    _INSERT_MESSAGE.many(tx.conn, rows)
    keywords: dict[int, set[str]] = {}
    for item in items:
        for target in item.targets:
            if target.keywords:
                keywords.setdefault(target.mailbox_id, set()).update(target.keywords.split())
    for box, names in keywords.items():
        remember_keywords(tx, box, names)
    for item, delivered in zip(items, results, strict=True):
        if item.also is not None:
            item.also(tx, delivered)
    return results


# --- reading back ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageRecord:
    mailbox_id: int
    uid: int
    modseq: int
    flags: int
    size: int
    internal_date: int
    message_id: str | None
    blob_id: int


def list_messages(conn: Connection, box_id: int) -> list[MessageRecord]:
    rows = conn.execute(
        select(
            message_table.c.mailbox_id,
            message_table.c.uid,
            message_table.c.modseq,
            message_table.c.flags,
            message_table.c.size,
            message_table.c.internal_date,
            message_table.c.message_id,
            message_table.c.blob_id,
        )
        .where(message_table.c.mailbox_id == box_id)
        .order_by(message_table.c.uid)
    )
    return [MessageRecord(*row) for row in rows]


def count_messages(conn: Connection, box_id: int) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(message_table)
            .where(message_table.c.mailbox_id == box_id)
        ).scalar_one()
    )


def _message_field(conn: Connection, column: Any, box_id: int, uid: int) -> Any:
    row = conn.execute(
        select(column).where(message_table.c.mailbox_id == box_id, message_table.c.uid == uid)
    ).first()
    if row is None:
        raise NotFoundError(f"message {uid} does not exist in mailbox {box_id}")
    return row[0]


def message_bytes(conn: Connection, blobs: BlobStore, box_id: int, uid: int) -> bytes:
    return blobs.get(conn, _message_field(conn, message_table.c.blob_id, box_id, uid))


def body_structure(conn: Connection, box_id: int, uid: int) -> Part:
    data = _message_field(conn, message_table.c.body_structure, box_id, uid)
    return Part.from_json(json.loads(data))
