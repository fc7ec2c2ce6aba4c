"""What the patient space's messagerie reads: a patient's conversations with their unread
counts and professionals, and the messages of a conversation as stored in the patient's
own mailboxes (INBOX for what professionals sent, Sent for the patient's replies).

Every query is scoped by the patient (INS and their mailboxes): an id of someone else's
finds nothing, so the space answers 404 for it as for an id that does not exist.

A conversation's message is found in the mailbox by its Message-ID, a professional's in
INBOX only and the patient's in Sent only (a professional cannot make their message pass
for the patient's); the delivery refuses a Message-ID that another sender already used in
the patient's conversations (`delivery/policy.py`), so one professional's message cannot
show inside another's conversation.

A mail whose XDM holds a document hidden from the legal representatives
(INVISIBLE_REPRESENTANTS_LEGAUX, DOMAIN.md §5) is stored in the patient's INBOX with the
keyword `HIDDEN_FROM_REPRESENTATIVES`; its conversation (every message, attachment, frame
and export entry) is hidden from a representative viewing the patient's space.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, func, literal, or_, select

from mss.store.accounts import get_account
from mss.store.conversations import PROFESSIONAL
from mss.store.mailboxes import INBOX
from mss.store.models import (
    SystemFlag,
    conversation_message_table,
    conversation_table,
    message_table,
    participant_table,
)
from mss.store.sql import RawStatement

SENT = "Sent"
# The keyword of a patient's message whose XDM holds a document hidden from the legal
# representatives (set at delivery, `delivery/inbound.py`).
HIDDEN_FROM_REPRESENTATIVES = "$MSSInvisibleRepresentants"
c_ = conversation_table.c
cm = conversation_message_table.c
m = message_table.c
p_ = participant_table.c


@dataclass(frozen=True, slots=True)
class PatientBoxes:
    """The patient's account and the mailboxes the messagerie reads."""

    account_id: int
    display_name: str | None
    inbox: int
    sent: int | None

    @property
    def ids(self) -> tuple[int, ...]:
        return (self.inbox,) if self.sent is None else (self.inbox, self.sent)


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message of a conversation as the patient's mailbox holds it."""

    id: int  # message.id: the message's id in the space's URLs
    conversation_id: int
    mailbox_id: int
    uid: int
    flags: int
    internal_date: int
    subject: str | None
    message_id: str | None
    references: str | None
    blob_id: int
    body_structure: str
    sender: str
    from_patient: bool

    @property
    def seen(self) -> bool:
        return bool(self.flags & SystemFlag.SEEN)


@dataclass(frozen=True, slots=True)
class Participant:
    conversation_id: int
    address: str
    display_name: str | None


_BOXES = RawStatement("SELECT name, id FROM mailbox WHERE account_id = ? AND name IN (?, ?)")


def patient_boxes(conn: Connection, address: str) -> PatientBoxes | None:
    account = get_account(conn, address)
    if account is None or account.patient_id is None:
        return None
    boxes = {str(name): int(id_) for name, id_ in _BOXES.all(conn, account.id, INBOX, SENT)}
    if INBOX not in boxes:
        return None
    return PatientBoxes(account.id, account.display_name, boxes[INBOX], boxes.get(SENT))


_MESSAGE_COLUMNS = (
    m.id, cm.conversation_id, m.mailbox_id, m.uid, m.flags, m.internal_date, m.subject,
    m.message_id, m.refs, m.blob_id, m.body_structure, cm.sender, cm.from_patient,
)  # fmt: skip


def _in_its_mailbox(boxes: PatientBoxes) -> ColumnElement[bool]:
    """The stored copy of a conversation message: a professional's in INBOX, the
    patient's in Sent, with its Message-ID."""
    professional = and_(cm.from_patient.is_(False), m.mailbox_id == boxes.inbox)
    if boxes.sent is None:
        return and_(cm.message_id == m.message_id, professional)
    patient = and_(cm.from_patient.is_(True), m.mailbox_id == boxes.sent)
    return and_(cm.message_id == m.message_id, or_(professional, patient))


def _is_hidden() -> ColumnElement[bool]:
    keywords = literal(" ") + func.coalesce(m.keywords, "") + literal(" ")
    return keywords.like(f"% {HIDDEN_FROM_REPRESENTATIVES} %")


def hidden_conversations(patient_ins: str, inbox: int) -> Select[Any]:
    """The ids of the patient's conversations hidden from their legal representatives: those
    with a message marked `HIDDEN_FROM_REPRESENTATIVES` in the patient's INBOX."""
    return (
        select(cm.conversation_id)
        .select_from(message_table)
        .join(conversation_message_table, cm.message_id == m.message_id)
        .join(conversation_table, c_.id == cm.conversation_id)
        .where(m.mailbox_id == inbox, c_.patient_ins == patient_ins, _is_hidden())
    )


def _messages(patient_ins: str, boxes: PatientBoxes, representative: bool) -> Select[Any]:
    query = (
        select(*_MESSAGE_COLUMNS)
        .join(conversation_message_table, _in_its_mailbox(boxes))
        .join(conversation_table, c_.id == cm.conversation_id)
        .where(c_.patient_ins == patient_ins, m.mailbox_id.in_(list(boxes.ids)))
    )
    if representative:
        query = query.where(
            cm.conversation_id.not_in(hidden_conversations(patient_ins, boxes.inbox))
        )
    return query


def conversation_messages(
    conn: Connection, patient_ins: str, boxes: PatientBoxes, conversation_id: int,
    representative: bool = False,
) -> list[StoredMessage]:  # fmt: skip
    """The messages of one of the patient's conversations, oldest first (none of a
    conversation hidden from a `representative`)."""
    rows = conn.execute(
        _messages(patient_ins, boxes, representative)
        .where(cm.conversation_id == conversation_id)
        .order_by(m.internal_date, m.id)
    )
    found = {row.id: StoredMessage(*row) for row in rows}
    return list(found.values())


def patient_message(
    conn: Connection, patient_ins: str, boxes: PatientBoxes, message_row_id: int,
    representative: bool = False,
) -> StoredMessage | None:  # fmt: skip
    """One message of the patient's conversations, by its id; None if not theirs (or, for
    a `representative`, in a conversation hidden from them)."""
    query = _messages(patient_ins, boxes, representative).where(m.id == message_row_id)
    row = conn.execute(query.limit(1)).first()
    return None if row is None else StoredMessage(*row)


def is_hidden_conversation(
    conn: Connection, patient_ins: str, inbox: int, conversation_id: int
) -> bool:
    """Whether this conversation of the patient's is hidden from their representatives."""
    query = hidden_conversations(patient_ins, inbox).where(cm.conversation_id == conversation_id)
    return conn.execute(query.limit(1)).first() is not None


def hidden_blobs(conn: Connection, patient_ins: str, boxes: PatientBoxes) -> set[int]:
    """The blobs of the patient's messages (INBOX and Sent) that belong to a conversation
    hidden from their representatives: what a representative's export leaves out."""
    hidden = hidden_conversations(patient_ins, boxes.inbox)
    rows = conn.execute(
        select(m.blob_id)
        .join(conversation_message_table, _in_its_mailbox(boxes))
        .where(m.mailbox_id.in_(list(boxes.ids)), cm.conversation_id.in_(hidden))
    )
    return {int(row.blob_id) for row in rows}


def unread_counts(
    conn: Connection, patient_ins: str, inbox: int, conversation_ids: Sequence[int]
) -> dict[int, int]:
    """Per conversation of these: how many of its messages in INBOX are not \\Seen."""
    if not conversation_ids:
        return {}
    rows = conn.execute(
        select(cm.conversation_id, func.count(func.distinct(m.id)))
        .select_from(conversation_message_table)
        .join(conversation_table, c_.id == cm.conversation_id)
        .join(message_table, m.message_id == cm.message_id)
        .where(
            c_.patient_ins == patient_ins,
            cm.from_patient.is_(False),
            cm.conversation_id.in_(list(conversation_ids)),
            # An expression, not the column: a planner that walked the whole INBOX by its
            # index (SQLite does) would read every message; by Message-ID it reads the
            # conversations' own.
            (m.mailbox_id + 0) == inbox,
            m.flags.op("&")(int(SystemFlag.SEEN)) == 0,
        )
        .group_by(cm.conversation_id)
    )
    return {int(row[0]): int(row[1]) for row in rows}


def professionals_of(conn: Connection, conversation_ids: Sequence[int]) -> list[Participant]:
    """The professionals taking part in these conversations, with the name they gave."""
    if not conversation_ids:
        return []
    rows = conn.execute(
        select(p_.conversation_id, p_.address, p_.display_name)
        .where(and_(p_.conversation_id.in_(list(conversation_ids)), p_.role == PROFESSIONAL))
        .order_by(p_.conversation_id, p_.address)
    )
    return [Participant(*row) for row in rows]


def sender_names(conn: Connection, addresses: Sequence[str], ins: str) -> dict[str, str]:
    """The display name each address gave in a conversation with this patient, when it
    gave one (only this patient's conversations: a professional is in thousands)."""
    if not addresses:
        return {}
    theirs = select(conversation_table.c.id).where(conversation_table.c.patient_ins == ins)
    rows = conn.execute(
        select(p_.address, p_.display_name).where(
            p_.conversation_id.in_(theirs), p_.address.in_(list(addresses)),
            p_.display_name.is_not(None),
        )
    )  # fmt: skip
    return {row.address: row.display_name for row in rows if row.display_name}
