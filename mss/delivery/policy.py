"""The conversation rules with patients (DOMAIN.md §2), in one place for every door.

- Only a professional may write to a patient, and so start a conversation.
  "Un patient peut uniquement vous répondre" (seed 001).
- A patient's message is valid only as a reply (In-Reply-To / References) to a
  message of an open conversation of theirs, and only to that conversation's
  professionals.
- A professional ends a conversation with the subject `[FIN]` or the header
  `X-MSS-MES: FIN` (ANS Réf. #2 ECO.2.2.8); the patient can no longer reply in it.
  Only a professional who took part in it before this message may end it: another's
  `[FIN]` answering it joins them to it and ends nothing (DOMAIN.md §2). A `[FIN]` that
  answers no message ends every open conversation of that professional with that
  patient.
- A message whose Message-ID another sender already used in the patient's
  conversations is refused: messages are found by their Message-ID, and one
  professional's must never show as another's (or as the patient's).
- No reply time window is published: `policy.reply_window_days` (0 = none).
- Besides replying, a patient may write a new message (no In-Reply-To) to one
  professional who already wrote to them in a conversation still open, as Mon espace
  santé allows (`policy.new_message_to_professionals`, on by default; off: replies
  only). The message joins that professional's newest open conversation.

`plan` decides (raising a `Rejection`), `record` writes the decision. Both run
once, inside the delivery's transaction, so the message and its conversation
record commit together, against the state of the conversation at that moment.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from mss.core.mime.headers import decode_words
from mss.errors import Rejection
from mss.store.conversations import (
    PROFESSIONAL,
    ConversationRecord,
    add_participant,
    end_conversation,
    find_by_message_ids,
    last_professional_message_at,
    message_id_used_by_another,
    open_conversation,
    open_conversation_written_by,
    open_conversations_with,
    participants,
    professionals_who_wrote,
    record_message,
    someone_wrote,
)
from mss.store.sql import Conn, Tx

FIN_SUBJECT = "[FIN]"

NOT_A_REPLY = Rejection(
    550,
    "5.7.1",
    "Un patient ne peut que répondre à un message d'un professionnel "
    "(a patient may only reply to a professional's message)",
)
CONVERSATION_ENDED = Rejection(
    550,
    "5.7.1",
    "Le professionnel a clos cette conversation ([FIN]) : la réponse n'est plus possible "
    "(the professional ended this conversation)",
)
NOT_A_PARTICIPANT = Rejection(
    550,
    "5.7.1",
    "Un patient ne peut répondre qu'aux professionnels de la conversation "
    "(a patient may only reply to the professionals of the conversation)",
)
NOT_ELIGIBLE = Rejection(
    550,
    "5.7.1",
    "Un patient ne peut que répondre, ou écrire à un professionnel qui lui a déjà écrit et "
    "n'a pas mis fin aux échanges (a patient may only reply, or write to a professional who "
    "already wrote to them and has not ended the exchange)",
)
ONE_PROFESSIONAL = Rejection(
    550,
    "5.7.1",
    "Un nouveau message d'un patient ne s'adresse qu'à un seul professionnel "
    "(a patient's new message goes to one professional)",
)
MESSAGE_ID_TAKEN = Rejection(
    550,
    "5.7.1",
    "Ce Message-ID est déjà celui d'un message d'un autre expéditeur dans les échanges de ce "
    "patient (this Message-ID is already another sender's in this patient's conversations)",
)
REPLY_WINDOW_CLOSED = Rejection(
    550,
    "5.7.1",
    "Le délai de réponse de cette conversation est dépassé (the reply window has closed)",
)


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """What the rules need to know of one message."""

    sender: str
    sender_professional: bool
    sender_patient_ins: str | None
    sender_name: str | None
    patient_ins: str | None  # the one patient among the recipients, if any
    professional_recipients: tuple[str, ...]
    message_id: str
    replied_ids: tuple[str, ...]  # In-Reply-To then References, newest last
    subject: str | None
    ends: bool  # [FIN] subject or X-MSS-MES: FIN

    @property
    def concerns_patient(self) -> bool:
        return self.patient_ins is not None or self.sender_patient_ins is not None


@dataclass(frozen=True, slots=True)
class Plan:
    """What to record: continue conversation `conversation_id`, or open one (None)."""

    kind: str  # "professional" (to a patient) or "patient" (a reply)
    patient_ins: str
    conversation_id: int | None
    end_ids: tuple[int, ...] = field(default=())  # conversations to end ([FIN])
    ends_opened: bool = False  # a [FIN] answering nothing open: its new conversation ends

    @property
    def ends(self) -> bool:
        """Whether this message ends a conversation."""
        return bool(self.end_ids) or self.ends_opened


def ends_conversation(subject: str | None, mss_mes: str | None) -> bool:
    """`[FIN]` subject (also RFC 2047-encoded), or `X-MSS-MES: FIN` (ANS Réf. #2
    ECO.2.2.8)."""
    by_subject = decode_words(subject or "").strip() == FIN_SUBJECT
    return by_subject or (mss_mes or "").strip().upper() == "FIN"


def plan(
    conn: Conn,
    facts: MessageFacts,
    reply_window_days: int,
    now: dt.datetime,
    *,
    new_messages: bool = False,
) -> Plan | None:
    """Apply the rules; None when the message concerns no patient. `new_messages`: a
    patient may write to a professional who wrote to them (not only reply). A null
    sender (a report: DSN, MDN) never takes part in a conversation."""
    if not facts.sender:
        return None
    ins = facts.sender_patient_ins or facts.patient_ins
    if ins is not None and message_id_used_by_another(conn, ins, facts.message_id, facts.sender):
        raise MESSAGE_ID_TAKEN
    if facts.sender_patient_ins is not None:
        if not facts.replied_ids and new_messages:
            return _plan_patient_new(conn, facts)
        return _plan_patient_reply(conn, facts, reply_window_days, now)
    if facts.patient_ins is None:
        return None
    return _plan_professional(conn, facts)


def _plan_patient_reply(
    conn: Conn, facts: MessageFacts, reply_window_days: int, now: dt.datetime
) -> Plan:
    ins = facts.sender_patient_ins
    assert ins is not None
    if not facts.replied_ids:
        raise NOT_A_REPLY
    conversation = find_by_message_ids(conn, ins, facts.replied_ids)
    if conversation is None:
        raise NOT_A_REPLY
    if not conversation.open:
        raise CONVERSATION_ENDED
    if reply_window_days > 0:
        last = last_professional_message_at(conn, conversation.id)
        if last is not None and now - last > dt.timedelta(days=reply_window_days):
            raise REPLY_WINDOW_CLOSED
    members = set(participants(conn, conversation.id, PROFESSIONAL))
    if not facts.professional_recipients or not set(facts.professional_recipients) <= members:
        raise NOT_A_PARTICIPANT
    return Plan("patient", ins, conversation.id)


def _plan_patient_new(conn: Conn, facts: MessageFacts) -> Plan:
    """A patient's new message: to one professional who wrote in a conversation still open."""
    ins = facts.sender_patient_ins
    assert ins is not None
    if len(facts.professional_recipients) != 1:
        raise ONE_PROFESSIONAL if facts.professional_recipients else NOT_ELIGIBLE
    conversation = open_conversation_written_by(conn, ins, facts.professional_recipients[0])
    if conversation is None:
        raise NOT_ELIGIBLE
    return Plan("patient", ins, conversation.id)


def may_write_to(conn: Conn, patient_ins: str) -> list[str]:
    """The professionals a patient may write a new message to (most recent first)."""
    return professionals_who_wrote(conn, patient_ins)


def may_write_to_someone(conn: Conn, patient_ins: str) -> bool:
    """Whether `may_write_to` names anyone, without naming them all."""
    return someone_wrote(conn, patient_ins)


def _plan_professional(conn: Conn, facts: MessageFacts) -> Plan:
    ins = facts.patient_ins
    assert ins is not None
    conversation: ConversationRecord | None = None
    if facts.replied_ids:
        conversation = find_by_message_ids(conn, ins, facts.replied_ids)
    if conversation is not None and not conversation.open:
        conversation = None  # an ended conversation stays ended: this opens a new one
    if not facts.ends:
        return Plan("professional", ins, conversation.id if conversation else None)
    if conversation is None:
        mine = tuple(c.id for c in open_conversations_with(conn, ins, facts.sender))
        return Plan("professional", ins, None, mine, ends_opened=not mine)
    if facts.sender in participants(conn, conversation.id, PROFESSIONAL):
        return Plan("professional", ins, conversation.id, (conversation.id,))
    return Plan("professional", ins, conversation.id)  # joins it; ends nothing


def record(tx: Tx, facts: MessageFacts, decided: Plan) -> int | None:
    """Write the decision; return the conversation id (None for a bare [FIN])."""
    if decided.kind == "patient":
        assert decided.conversation_id is not None
        record_message(
            tx, decided.conversation_id, message_id=facts.message_id, sender=facts.sender,
            from_patient=True,
        )  # fmt: skip
        return decided.conversation_id
    conversation_id = decided.conversation_id
    opened = conversation_id is None and not decided.end_ids
    if opened:  # with its sender as participant, and its last activity now
        conversation_id = open_conversation(
            tx, patient_ins=decided.patient_ins, professional=facts.sender, subject=facts.subject,
            display_name=facts.sender_name,
        )  # fmt: skip
    if conversation_id is not None:
        _join(tx, conversation_id, facts, sender_joined=opened)
        record_message(
            tx, conversation_id, message_id=facts.message_id, sender=facts.sender,
            from_patient=False, touch=not opened,
        )  # fmt: skip
    for ended in decided.end_ids:
        end_conversation(tx, ended, by=facts.sender)
    if decided.ends_opened and conversation_id is not None:
        end_conversation(tx, conversation_id, by=facts.sender)
    return conversation_id


def _join(tx: Tx, conversation_id: int, facts: MessageFacts, *, sender_joined: bool) -> None:
    if not sender_joined:
        add_participant(tx, conversation_id, facts.sender, PROFESSIONAL, facts.sender_name)
    for address in facts.professional_recipients:
        add_participant(tx, conversation_id, address, PROFESSIONAL)


def replied_ids(in_reply_to: Sequence[str], references: Sequence[str]) -> tuple[str, ...]:
    """Message-IDs a message answers, without duplicates."""
    return tuple(dict.fromkeys([*references, *in_reply_to]))
