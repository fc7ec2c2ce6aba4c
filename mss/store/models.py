"""The tables of the store (SQLModel), shared by SQLite and PostgreSQL.

Hot paths (delivery, FETCH, SEARCH) use SQLAlchemy Core on `Model.__table__`;
the classes are the schema and the typed rows for everything else. Any change
here needs an Alembic migration in `store/migrations/versions/` (a test compares
the two).

Times that IMAP sorts and searches on (internal date, sent date) are integers
(Unix seconds, UTC): cheap to compare and to read back by the hundred thousand.
"""

from __future__ import annotations

import datetime as dt
from enum import IntFlag, StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    false,
)
from sqlmodel import Field, SQLModel

from mss.store import annuaire as annuaire_tables

# BIGINT on PostgreSQL; INTEGER on SQLite so that the primary key is the rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class AccountKind(StrEnum):
    PROFESSIONAL = "professional"
    APPLICATIVE = "applicative"
    PATIENT = "patient"


class BalType(StrEnum):
    """Types of MSSanté mailboxes (ANS TRE_R257)."""

    PER = "PER"  # personal: one RPPS holder
    ORG = "ORG"  # organisational: a service or a team
    APP = "APP"  # applicative: software, authenticates by certificate
    CAB = "CAB"  # practice


class ProfileStatus(StrEnum):
    """Status of a patient's Mon espace santé profile (DOMAIN.md §2)."""

    ACTIVE = "active"
    CLOSED = "closed"
    OPPOSED = "opposed"


class ConversationStatus(StrEnum):
    OPEN = "open"
    ENDED = "ended"


class SystemFlag(IntFlag):
    """IMAP system flags (RFC 3501 §2.3.2) as bits of `message.flags`."""

    SEEN = 1
    ANSWERED = 2
    FLAGGED = 4
    DELETED = 8
    DRAFT = 16


class Patient(SQLModel, table=True):
    __tablename__ = "patient"

    id: int | None = Field(default=None, primary_key=True)
    ins: str = Field(max_length=15, unique=True)
    oid: str = Field(max_length=64)
    # The five INS traits (seed 001): birth name, birth first names, birth date,
    # sex, birth place code.
    birth_family: str = Field(max_length=100)
    birth_given: str = Field(max_length=200)
    birth_date: dt.date
    sex: str = Field(max_length=1)
    birth_place: str | None = Field(default=None, max_length=5)
    used_family: str | None = Field(default=None, max_length=100)
    used_given: str | None = Field(default=None, max_length=100)
    identity_status: str = Field(default="QUAL", max_length=5)
    profile_status: str = Field(default=ProfileStatus.ACTIVE.value, max_length=10)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=32)
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)


class Account(SQLModel, table=True):
    __tablename__ = "account"

    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(max_length=254, unique=True)
    kind: str = Field(max_length=16)
    bal_type: str | None = Field(default=None, max_length=3)
    display_name: str | None = Field(default=None, max_length=200)
    password_hash: str | None = Field(default=None, max_length=255)
    # National id of the professional: "8" + RPPS or "0" + ADELI (DOMAIN.md §7).
    national_id: str | None = Field(default=None, max_length=20, index=True)
    patient_id: int | None = Field(default=None, foreign_key="patient.id", unique=True)
    # What every door checks: the operator's switch, or (a patient's) a profile not active
    disabled: bool = False
    # `mss patient disable`: the operator's alone (reopening a profile does not undo it)
    operator_disabled: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    created_at: dt.datetime = Field(default_factory=utcnow)
    # UIDVALIDITY of the account's last created mailbox: a re-created name must get a
    # greater one (RFC 3501 §2.3.1.1).
    last_uidvalidity: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, default=0, server_default="0")
    )


class Mailbox(SQLModel, table=True):
    """An IMAP mailbox with its state (RFC 3501 §2.3.1, RFC 7162 HIGHESTMODSEQ)."""

    __tablename__ = "mailbox"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    name: str = Field(max_length=500)
    special_use: str | None = Field(default=None, max_length=16)
    uidvalidity: int = Field(sa_column=Column(BigInteger, nullable=False))
    uidnext: int = Field(default=1, sa_column=Column(BigInteger, nullable=False, default=1))
    highestmodseq: int = Field(default=1, sa_column=Column(BigInteger, nullable=False, default=1))
    # Messages with uid >= first_recent_uid are \Recent for the next session that
    # selects the mailbox read-write (RFC 3501 §2.3.2).
    first_recent_uid: int = Field(
        default=1, sa_column=Column(BigInteger, nullable=False, default=1)
    )
    subscribed: bool = True
    # Every keyword (RFC 3501 §2.3.2) a message of the mailbox has had, space
    # separated: sessions announce them in FLAGS before a FETCH uses them.
    keywords: str | None = Field(default=None, sa_column=Column(Text))
    created_at: dt.datetime = Field(default_factory=utcnow)


class Blob(SQLModel, table=True):
    """Bytes of a message or document, AES-256-GCM encrypted (nonce ‖ ciphertext ‖ tag)."""

    __tablename__ = "blob"

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    key_id: str = Field(max_length=40)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Message(SQLModel, table=True):
    """One message in one mailbox, with what IMAP needs computed at delivery."""

    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("mailbox_id", "uid"),
        Index("ix_message_mailbox_modseq", "mailbox_id", "modseq"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    mailbox_id: int = Field(foreign_key="mailbox.id")
    uid: int = Field(sa_column=Column(BigInteger, nullable=False))
    modseq: int = Field(sa_column=Column(BigInteger, nullable=False))
    flags: int = 0
    keywords: str | None = Field(default=None, sa_column=Column(Text))
    internal_date: int = Field(sa_column=Column(BigInteger, nullable=False))
    sent_date: int | None = Field(default=None, sa_column=Column(BigInteger))
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    blob_id: int = Field(sa_column=Column(BigId, ForeignKey("blob.id"), nullable=False, index=True))
    message_id: str | None = Field(default=None, max_length=998, index=True)
    in_reply_to: str | None = Field(default=None, sa_column=Column(Text))
    references: str | None = Field(default=None, sa_column=Column("refs", Text))
    subject: str | None = Field(default=None, sa_column=Column(Text))
    envelope: str = Field(sa_column=Column(Text, nullable=False))
    body_structure: str = Field(sa_column=Column(Text, nullable=False))
    # The X-MSS-* header fields of ANS Référentiel #2 (JSON object), if any.
    mss_headers: str | None = Field(default=None, sa_column=Column(Text))
    # The header section, unfolded, encoded words decoded, case-folded: what IMAP
    # SEARCH matches header keys against without decrypting the message.
    header_text: str | None = Field(default=None, sa_column=Column(Text))


class Expunged(SQLModel, table=True):
    """Expunged UIDs with the modseq of their expunge (RFC 7162 §3.2.5 VANISHED, and
    how other sessions learn of an expunge)."""

    __tablename__ = "expunged"
    __table_args__ = (Index("ix_expunged_mailbox_modseq", "mailbox_id", "modseq"),)

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    mailbox_id: int = Field(sa_column=Column(Integer, nullable=False))
    uid: int = Field(sa_column=Column(BigInteger, nullable=False))
    modseq: int = Field(sa_column=Column(BigInteger, nullable=False))


class Conversation(SQLModel, table=True):
    """A conversation a professional opened with a patient (DOMAIN.md §2)."""

    __tablename__ = "conversation"

    id: int | None = Field(default=None, primary_key=True)
    # The patient's INS, not a patient row: the patient may be hosted by another
    # operator while the professional is here.
    patient_ins: str = Field(max_length=15, index=True)
    status: str = Field(default=ConversationStatus.OPEN.value, max_length=8)
    subject: str | None = Field(default=None, sa_column=Column(Text))
    started_by: str = Field(max_length=254)
    started_at: dt.datetime = Field(default_factory=utcnow)
    ended_by: str | None = Field(default=None, max_length=254)
    ended_at: dt.datetime | None = None
    last_activity: dt.datetime = Field(default_factory=utcnow)


class ConversationParticipant(SQLModel, table=True):
    """A professional (or the patient) taking part in a conversation."""

    __tablename__ = "conversation_participant"

    conversation_id: int = Field(foreign_key="conversation.id", primary_key=True)
    address: str = Field(max_length=254, primary_key=True, index=True)
    role: str = Field(max_length=16)
    display_name: str | None = Field(default=None, max_length=200)


class ConversationMessage(SQLModel, table=True):
    """A message exchanged in a conversation, found again by its Message-ID."""

    __tablename__ = "conversation_message"

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    message_id: str = Field(max_length=998, index=True)
    sender: str = Field(max_length=254)
    from_patient: bool = False
    at: dt.datetime = Field(default_factory=utcnow)


class TrustedDomain(SQLModel, table=True):
    """A domain of the MSSanté trust space (the national whitelist, DOMAIN.md §1)."""

    __tablename__ = "trusted_domain"

    domain: str = Field(max_length=255, primary_key=True)
    imported_at: dt.datetime = Field(default_factory=utcnow)


class OutboxStatus(StrEnum):
    PENDING = "pending"  # to do, or being done under a lease (due_at = end of the lease)
    DONE = "done"  # its handler finished it
    FAILED = "failed"  # its handler gave up for good and dealt with it (e.g. a DSN)
    DEAD = "dead"  # dead-lettered: too many attempts; `mss outbox retry` revives it
    DROPPED = "dropped"  # an operator gave up on it


class Outbox(SQLModel, table=True):
    """Work to do after a commit, written in the same transaction as its cause (outbox
    pattern): relay a message to another operator, deposit documents in the DMP, send
    an MDN, notify a patient. `store/outbox.py` claims, finishes and retries the rows."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "due_at"),
        Index("ix_outbox_kind", "kind", "status"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    kind: str = Field(max_length=32)
    status: str = Field(default=OutboxStatus.PENDING.value, max_length=8)
    blob_id: int | None = Field(
        default=None, sa_column=Column(BigId, ForeignKey("blob.id"), nullable=True, index=True)
    )
    payload: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    attempts: int = 0  # counted when claimed: a process killed while handling it counts
    due_at: int = Field(sa_column=Column(BigInteger, nullable=False))  # Unix seconds
    expires: int | None = Field(default=None, sa_column=Column(BigInteger))
    lease_owner: str | None = Field(default=None, max_length=64)
    created: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    result: str | None = Field(default=None, sa_column=Column(Text))


# --- notifications (DOMAIN.md §8) ------------------------------------------------------------


class NotifyPreference(SQLModel, table=True):
    """A patient's choice for one category of notices on one channel (absent: default)."""

    __tablename__ = "notify_preference"

    ins: str = Field(max_length=15, primary_key=True)
    category: str = Field(max_length=16, primary_key=True)
    channel: str = Field(max_length=8, primary_key=True)
    enabled: bool = True


class PushSubscription(SQLModel, table=True):
    """A browser's Web Push subscription (RFC 8030/8291) for a patient's space."""

    __tablename__ = "push_subscription"
    # one browser may be subscribed in several spaces (a parent's, their child's)
    __table_args__ = (
        UniqueConstraint("ins", "endpoint", name="uq_push_subscription_ins_endpoint"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ins: str = Field(max_length=15, index=True)
    endpoint: str = Field(max_length=1000)
    p256dh: str = Field(max_length=200)
    auth: str = Field(max_length=100)
    created: int = Field(sa_column=Column(BigInteger, nullable=False))


class ContactStatus(SQLModel, table=True):
    """An e-mail address or phone number that bounced or was refused for good."""

    __tablename__ = "contact_status"

    destination: str = Field(max_length=254, primary_key=True)
    failing: bool = True
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    updated: int = Field(sa_column=Column(BigInteger, nullable=False))


class NotifyLog(SQLModel, table=True):
    """What became of each notice to a patient (their history shows it; so does
    `mss notify list`): queued, sent, failed, deferred, coalesced, no contact…"""

    __tablename__ = "notify_log"
    __table_args__ = (
        Index("ix_notify_log_ins_at", "ins", "at"),  # a patient's history
        Index("ix_notify_log_active", "ins", "status", "at"),  # coalescing, daily limit
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    ins: str = Field(max_length=15)
    event_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    notice_id: str = Field(max_length=64, index=True)
    event: str = Field(max_length=32)
    category: str = Field(max_length=16)
    channel: str = Field(default="", max_length=8)
    destination: str = Field(default="", max_length=254)  # masked
    status: str = Field(max_length=16)  # queued, retrying, sent, failed, profile_closed…
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    created: int = Field(sa_column=Column(BigInteger, nullable=False))  # the event's
    at: int = Field(sa_column=Column(BigInteger, nullable=False))
    # the document a notice is about (new_document): the history hides what one may not see
    document_id: int | None = Field(default=None, sa_column=Column(BigInteger))


class MailboxWebhook(SQLModel, table=True):
    """An applicative (APP) mailbox's webhook, called on new mail (Standard Webhooks)."""

    __tablename__ = "mailbox_webhook"

    address: str = Field(max_length=254, primary_key=True)
    url: str = Field(max_length=1000)
    secrets: str = Field(sa_column=Column(Text, nullable=False))  # space-separated, newest first
    created: int = Field(sa_column=Column(BigInteger, nullable=False))


# --- the patient space ------------------------------------------------------------------------


class SpaceSession(SQLModel, table=True):
    """A login to the patient space: the cookie's token is never stored, only its SHA-256
    (`id`); `ins` is whose space is shown (the patient, or one a representative acts for)."""

    __tablename__ = "space_session"

    id: str = Field(max_length=64, primary_key=True)
    account: str = Field(max_length=254, index=True)  # the address that logged in
    ins: str = Field(max_length=15)
    representative: bool = False
    csrf: str = Field(max_length=64)
    created: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_seen: int = Field(sa_column=Column(BigInteger, nullable=False))
    expires: int = Field(sa_column=Column(BigInteger, nullable=False))  # the absolute timeout
    user_agent: str = Field(default="", max_length=200)
    address: str = Field(default="", max_length=45)  # the client's IP address


class SpaceCode(SQLModel, table=True):
    """A one-time code (activation, login, reset): only its hash is kept; it dies when
    used, expired or after five wrong tries. `id` is the SHA-256 of the pending token the
    browser holds between the two steps of a login (random for the other purposes)."""

    __tablename__ = "space_code"
    __table_args__ = (Index("ix_space_code_ins_purpose", "ins", "purpose"),)

    id: str = Field(max_length=64, primary_key=True)
    ins: str = Field(max_length=15)
    purpose: str = Field(max_length=12)  # activation, login, reset
    method: str = Field(max_length=8)  # email, sms, totp, print
    code_hash: str = Field(max_length=64)  # empty for a TOTP login
    created: int = Field(sa_column=Column(BigInteger, nullable=False))
    expires: int = Field(sa_column=Column(BigInteger, nullable=False))
    attempts: int = 0
    used: bool = False


class SpaceTotp(SQLModel, table=True):
    """A patient's TOTP secret (RFC 6238): in use once a first code confirmed it;
    `last_step` refuses a replay of the same time step."""

    __tablename__ = "space_totp"

    ins: str = Field(max_length=15, primary_key=True)
    secret: str = Field(max_length=64)
    confirmed: bool = False
    last_step: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    # a new enrolment started while `secret` is in use: replaces it once confirmed
    pending_secret: str | None = Field(default=None, max_length=64)


class SpaceDevice(SQLModel, table=True):
    """A browser that logged in to a patient's space (the SHA-256 of its long-lived
    device cookie): an unknown one brings the `new_device` notice."""

    __tablename__ = "space_device"

    id: str = Field(max_length=64, primary_key=True)
    ins: str = Field(max_length=15, index=True)
    created: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_seen: int = Field(sa_column=Column(BigInteger, nullable=False))


class SpaceThrottle(SQLModel, table=True):
    """Failed logins of one key (`account:<INS>` or `ip:<address>`), shared by every
    worker process: `failures` in the window started at `since`, `blocked_until` the
    back-off."""

    __tablename__ = "space_throttle"

    key: str = Field(max_length=300, primary_key=True)
    failures: int = 0
    since: int = Field(sa_column=Column(BigInteger, nullable=False))
    blocked_until: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class SpaceRepresentation(SQLModel, table=True):
    """A legal representative (a patient with their own INS and space) acting for another
    patient: a minor (until they come of age) or a protected adult; `ended` once unlinked."""

    __tablename__ = "space_representation"
    __table_args__ = (Index("ix_space_representation_pair", "representative_ins", "ins"),)

    id: int | None = Field(default=None, primary_key=True)
    representative_ins: str = Field(max_length=15)
    ins: str = Field(max_length=15, index=True)
    kind: str = Field(max_length=16)  # minor, protected_adult
    created: int = Field(sa_column=Column(BigInteger, nullable=False))
    ended: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


# --- the DMP (DOMAIN.md §5) -------------------------------------------------------------------


class DMPRecord(SQLModel, table=True):
    """A patient's DMP: open or closed, and the patient's oppositions."""

    __tablename__ = "dmp_record"

    id: int | None = Field(default=None, primary_key=True)
    ins: str = Field(max_length=15, unique=True)
    closed: bool = False
    oppose_bris_de_glace: bool = False
    oppose_centre15: bool = False
    created_at: dt.datetime = Field(default_factory=utcnow)
    closed_at: dt.datetime | None = None


class DMPDocument(SQLModel, table=True):
    """One version of a document of a DMP; a new version of the same logical document
    (`set_id`) marks the previous one superseded and keeps it (history)."""

    __tablename__ = "dmp_document"
    __table_args__ = (
        UniqueConstraint("record_id", "unique_id"),
        Index("ix_dmp_document_record_class", "record_id", "class_code"),
        Index("ix_dmp_document_record_set", "record_id", "set_id"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    record_id: int = Field(foreign_key="dmp_record.id")
    unique_id: str = Field(max_length=255)
    # the registry id of the document (XDM ExtrinsicObject id), that RPLC names
    entry_uuid: str = Field(default="", max_length=128)
    set_id: str = Field(max_length=255)
    version: int = 1
    superseded_by: int | None = Field(default=None, sa_column=Column(BigInteger))
    title: str = Field(default="", max_length=500)
    class_code: str = Field(default="", max_length=32)
    type_code: str = Field(default="", max_length=64)
    format_code: str = Field(default="", max_length=128)
    mime_type: str = Field(default="", max_length=100)
    confidentiality: str = Field(default="N", max_length=200)  # space-separated codes
    masked: bool = False  # MASQUE_PS: hidden from professionals but author and MT
    invisible_patient: bool = False
    hidden_from_representatives: bool = False
    # the national id of the author, else the address that deposited (a mailbox without one)
    author_national_id: str = Field(default="", max_length=254, index=True)
    author_name: str = Field(default="", max_length=200)
    author_profession: str = Field(default="", max_length=8)
    creation_time: dt.datetime | None = None
    service_start: dt.datetime | None = None
    service_stop: dt.datetime | None = None
    deposited_at: dt.datetime = Field(default_factory=utcnow)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    sha1: str = Field(max_length=40)
    blob_id: int = Field(sa_column=Column(BigId, ForeignKey("blob.id"), nullable=False))
    source: str = Field(default="api", max_length=16)  # api, mail
    source_message_id: str | None = Field(default=None, max_length=998)


class DMPPerson(SQLModel, table=True):
    """A professional in a special relation to a DMP: a médecin traitant DMP
    (`treating`), a professional the patient blocked (`blocked`)."""

    __tablename__ = "dmp_person"
    __table_args__ = (UniqueConstraint("record_id", "role", "national_id"),)

    id: int | None = Field(default=None, primary_key=True)
    record_id: int = Field(foreign_key="dmp_record.id", index=True)
    role: str = Field(max_length=16)
    national_id: str = Field(max_length=20)
    created_at: dt.datetime = Field(default_factory=utcnow)


class DMPAuthorization(SQLModel, table=True):
    """A professional's authorisation to consult a DMP (consent), until `expires_at`."""

    __tablename__ = "dmp_authorization"
    __table_args__ = (UniqueConstraint("record_id", "national_id"),)

    id: int | None = Field(default=None, primary_key=True)
    record_id: int = Field(foreign_key="dmp_record.id", index=True)
    national_id: str = Field(max_length=20)
    basis: str = Field(max_length=16)  # presumed (care team) or explicit
    granted_at: dt.datetime = Field(default_factory=utcnow)
    expires_at: dt.datetime


class DMPTrace(SQLModel, table=True):
    """An append-only, hash-chained trace of every consultation, deposit and change."""

    __tablename__ = "dmp_trace"

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    ins: str = Field(max_length=15, index=True)
    at: dt.datetime = Field(default_factory=utcnow)
    actor_kind: str = Field(max_length=16)  # professional, patient, system
    actor: str = Field(max_length=254)
    action: str = Field(max_length=32)
    mode: str = Field(default="", max_length=16)
    document_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


account_table = Account.__table__  # type: ignore[attr-defined]
mailbox_table = Mailbox.__table__  # type: ignore[attr-defined]
message_table = Message.__table__  # type: ignore[attr-defined]
blob_table = Blob.__table__  # type: ignore[attr-defined]
patient_table = Patient.__table__  # type: ignore[attr-defined]
conversation_table = Conversation.__table__  # type: ignore[attr-defined]
participant_table = ConversationParticipant.__table__  # type: ignore[attr-defined]
conversation_message_table = ConversationMessage.__table__  # type: ignore[attr-defined]
trusted_domain_table = TrustedDomain.__table__  # type: ignore[attr-defined]
outbox_table = Outbox.__table__  # type: ignore[attr-defined]
expunged_table = Expunged.__table__  # type: ignore[attr-defined]
notify_preference_table = NotifyPreference.__table__  # type: ignore[attr-defined]
push_subscription_table = PushSubscription.__table__  # type: ignore[attr-defined]
contact_status_table = ContactStatus.__table__  # type: ignore[attr-defined]
notify_log_table = NotifyLog.__table__  # type: ignore[attr-defined]
mailbox_webhook_table = MailboxWebhook.__table__  # type: ignore[attr-defined]
space_session_table = SpaceSession.__table__  # type: ignore[attr-defined]
dmp_record_table = DMPRecord.__table__  # type: ignore[attr-defined]
dmp_document_table = DMPDocument.__table__  # type: ignore[attr-defined]
dmp_person_table = DMPPerson.__table__  # type: ignore[attr-defined]
dmp_authorization_table = DMPAuthorization.__table__  # type: ignore[attr-defined]
dmp_trace_table = DMPTrace.__table__  # type: ignore[attr-defined]
metadata = SQLModel.metadata

# The annuaire's tables (two swappable sets per kind of extraction file).
annuaire_tables.define(metadata)
space_representation_table = SpaceRepresentation.__table__  # type: ignore[attr-defined]
