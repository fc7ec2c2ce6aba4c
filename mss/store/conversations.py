"""Conversations between professionals and a patient (DOMAIN.md §2), as stored.

The rules themselves live in `delivery/policy.py`; this module only records and
finds: a conversation is opened by a professional's message, each message of it
is remembered by its Message-ID (so a patient's reply is matched through
In-Reply-To/References), participants are the professionals taking part, and
ending it (`[FIN]`, `X-MSS-MES: FIN`) is a state change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, func, select, update

from mss.errors import NotFoundError
from mss.store.models import (
    ConversationStatus,
    conversation_message_table,
    conversation_table,
    participant_table,
    utcnow,
)
from mss.store.sql import RawStatement, Tx

PROFESSIONAL = "professional"
PATIENT = "patient"


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    id: int
    patient_ins: str
    status: str
    subject: str | None
    started_by: str
    started_at: dt.datetime
    ended_by: str | None
    ended_at: dt.datetime | None
    last_activity: dt.datetime

    @property
    def open(self) -> bool:
        return self.status == ConversationStatus.OPEN.value


_COLUMNS = (
    conversation_table.c.id,
    conversation_table.c.patient_ins,
    conversation_table.c.status,
    conversation_table.c.subject,
    conversation_table.c.started_by,
    conversation_table.c.started_at,
    conversation_table.c.ended_by,
    conversation_table.c.ended_at,
    conversation_table.c.last_activity,
)


c_ = conversation_table.c
p_ = participant_table.c
m_ = conversation_message_table.c
_OPEN = RawStatement(
    "INSERT INTO conversation (patient_ins, status, subject, started_by, started_at, "
    "last_activity) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
    [c_.patient_ins, c_.status, c_.subject, c_.started_by, c_.started_at, c_.last_activity],
)
_JOIN = RawStatement(
    "INSERT INTO conversation_participant (conversation_id, address, role, display_name) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (conversation_id, address) DO NOTHING",
    [p_.conversation_id, p_.address, p_.role, p_.display_name],
)
_RECORD = RawStatement(
    "INSERT INTO conversation_message (conversation_id, message_id, sender, from_patient, at) "
    "VALUES (?, ?, ?, ?, ?)",
    [m_.conversation_id, m_.message_id, m_.sender, m_.from_patient, m_.at],
)
_TOUCH = RawStatement(
    "UPDATE conversation SET last_activity = ? WHERE id = ?", [c_.last_activity, c_.id]
)


def open_conversation(
    tx: Tx,
    *,
    patient_ins: str,
    professional: str,
    subject: str | None,
    display_name: str | None = None,
) -> int:
    now = utcnow()
    row = _OPEN.first(
        tx.conn, patient_ins, ConversationStatus.OPEN.value, subject, professional, now, now
    )
    assert row is not None
    conversation_id = int(row[0])
    add_participant(tx, conversation_id, professional, PROFESSIONAL, display_name)
    return conversation_id


def add_participant(
    tx: Tx, conversation_id: int, address: str, role: str, display_name: str | None = None
) -> None:
    """Add a participant; nothing happens if they already take part."""
    _JOIN.run(tx.conn, conversation_id, address, role, display_name)


def record_message(
    tx: Tx,
    conversation_id: int,
    *,
    message_id: str,
    sender: str,
    from_patient: bool,
    touch: bool = True,
) -> None:
    """Record a message of the conversation; `touch=False` when the conversation was
    opened in this transaction (its last activity is already now)."""
    now = utcnow()
    _RECORD.run(tx.conn, conversation_id, message_id, sender, from_patient, now)
    if touch:
        _TOUCH.run(tx.conn, now, conversation_id)


def end_conversation(tx: Tx, conversation_id: int, *, by: str) -> None:
    result = tx.conn.execute(
        update(conversation_table)
        .where(conversation_table.c.id == conversation_id)
        .values(status=ConversationStatus.ENDED.value, ended_by=by, ended_at=utcnow())
    )
    if result.rowcount == 0:
        raise NotFoundError(f"conversation {conversation_id} does not exist")


def get_conversation(conn: Connection, conversation_id: int) -> ConversationRecord | None:
    row = conn.execute(select(*_COLUMNS).where(conversation_table.c.id == conversation_id)).first()
    return None if row is None else ConversationRecord(*row)


def find_by_message_ids(
    conn: Connection, patient_ins: str, message_ids: Sequence[str]
) -> ConversationRecord | None:
    """The conversation of this patient that contains one of `message_ids` (newest first)."""
    if not message_ids:
        return None
    return _newest_with_message(
        conn, patient_ins, conversation_message_table.c.message_id.in_(list(message_ids))
    )


def message_id_used_by_another(
    conn: Connection, patient_ins: str, message_id: str, sender: str
) -> bool:
    """Whether a message of this patient's conversations already has this Message-ID and
    another sender (a professional reusing another's Message-ID, or the patient's)."""
    return _ID_USED.first(conn, patient_ins, message_id, sender) is not None


# on the path of every message to or from a patient (the writer's), hence plain SQL
_ID_USED = RawStatement(
    "SELECT m.id FROM conversation_message AS m "
    "JOIN conversation AS c ON c.id = m.conversation_id "
    "WHERE c.patient_ins = ? AND m.message_id = ? AND m.sender != ? LIMIT 1"
)


def _newest_with_message(
    conn: Connection, patient_ins: str, *conditions: ColumnElement[bool]
) -> ConversationRecord | None:
    """The patient's most recently active conversation with a message meeting `conditions`."""
    row = conn.execute(
        select(*_COLUMNS)
        .join(
            conversation_message_table,
            conversation_message_table.c.conversation_id == conversation_table.c.id,
        )
        .where(conversation_table.c.patient_ins == patient_ins, *conditions)
        .order_by(conversation_table.c.last_activity.desc(), conversation_table.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else ConversationRecord(*row)


def participants(conn: Connection, conversation_id: int, role: str | None = None) -> list[str]:
    query = select(participant_table.c.address).where(
        participant_table.c.conversation_id == conversation_id
    )
    if role is not None:
        query = query.where(participant_table.c.role == role)
    return [row.address for row in conn.execute(query.order_by(participant_table.c.address))]


def conversations_of_patient(conn: Connection, patient_ins: str) -> list[ConversationRecord]:
    rows = conn.execute(
        select(*_COLUMNS)
        .where(conversation_table.c.patient_ins == patient_ins)
        .order_by(conversation_table.c.last_activity.desc())
    )
    return [ConversationRecord(*row) for row in rows]


def patient_conversations(
    conn: Connection, patient_ins: str, limit: int, offset: int = 0,
    excluding: Select[Any] | None = None,
) -> tuple[list[ConversationRecord], int]:  # fmt: skip
    """One page of the patient's conversations, most recent first, and how many there are
    (without those whose ids `excluding` selects)."""
    mine = conversation_table.c.patient_ins == patient_ins
    if excluding is not None:
        mine = and_(mine, conversation_table.c.id.not_in(excluding))
    rows = conn.execute(
        select(*_COLUMNS)
        .where(mine)
        .order_by(conversation_table.c.last_activity.desc(), conversation_table.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    count = select(func.count()).select_from(conversation_table)
    total = conn.execute(count.where(mine)).scalar_one()
    return [ConversationRecord(*row) for row in rows], int(total)


def open_conversations_with(
    conn: Connection, patient_ins: str, professional: str
) -> list[ConversationRecord]:
    """The open conversations of this patient in which this professional takes part."""
    rows = conn.execute(
        select(*_COLUMNS)
        .join(participant_table, participant_table.c.conversation_id == conversation_table.c.id)
        .where(
            conversation_table.c.patient_ins == patient_ins,
            conversation_table.c.status == ConversationStatus.OPEN.value,
            participant_table.c.address == professional,
        )
        .order_by(conversation_table.c.id)
    )
    return [ConversationRecord(*row) for row in rows]


def last_professional_message_at(conn: Connection, conversation_id: int) -> dt.datetime | None:
    value = conn.execute(
        select(func.max(conversation_message_table.c.at)).where(
            conversation_message_table.c.conversation_id == conversation_id,
            conversation_message_table.c.from_patient.is_(False),
        )
    ).scalar()
    return value if isinstance(value, dt.datetime) else None


def open_conversation_written_by(
    conn: Connection, patient_ins: str, professional: str
) -> ConversationRecord | None:
    """The newest open conversation of this patient in which `professional` wrote."""
    return _newest_with_message(
        conn,
        patient_ins,
        conversation_table.c.status == ConversationStatus.OPEN.value,
        conversation_message_table.c.from_patient.is_(False),
        conversation_message_table.c.sender == professional,
    )


def someone_wrote(conn: Connection, patient_ins: str) -> bool:
    """Whether a professional wrote to this patient in a conversation still open (the
    first row found; `professionals_who_wrote` reads them all)."""
    cm = conversation_message_table.c
    found = conn.execute(
        select(cm.id)
        .join(conversation_table, conversation_table.c.id == cm.conversation_id)
        .where(
            conversation_table.c.patient_ins == patient_ins,
            conversation_table.c.status == ConversationStatus.OPEN.value,
            cm.from_patient.is_(False),
        )
        .limit(1)
    ).first()
    return found is not None


def professionals_who_wrote(conn: Connection, patient_ins: str) -> list[str]:
    """Who wrote to this patient in a conversation still open, most recent first."""
    cm = conversation_message_table.c
    rows = conn.execute(
        select(cm.sender, func.max(cm.at).label("last"))
        .join(conversation_table, conversation_table.c.id == cm.conversation_id)
        .where(
            conversation_table.c.patient_ins == patient_ins,
            conversation_table.c.status == ConversationStatus.OPEN.value,
            cm.from_patient.is_(False),
        )
        .group_by(cm.sender)
        .order_by(func.max(cm.at).desc())
    )
    return [row.sender for row in rows]
