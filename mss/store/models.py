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
from mss.store.sql import BigId


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
    # This account's quotas apart from the settings' `[limits]` (`mss pro quota`):
    # None: the settings', 0: no limit (store/quotas.py).
    quota_folders: int | None = Field(default=None, sa_column=Column(BigInteger))
    quota_messages: int | None = Field(default=None, sa_column=Column(BigInteger))
    quota_storage: int | None = Field(default=None, sa_column=Column(BigInteger))


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
    # Every keyword (RFC 3501 §2.3.2) a message of the mailbox has had, space
    # separated: sessions announce them in FLAGS before a FETCH uses them.
    keywords: str | None = Field(default=None, sa_column=Column(Text))
    created_at: dt.datetime = Field(default_factory=utcnow)
    # What the mailbox holds, kept in the transactions that add and remove messages:
    # the account's quota usage is the sum over its mailboxes (store/quotas.py).
    message_count: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, default=0, server_default="0")
    )
    message_bytes: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, default=0, server_default="0")
    )


class Blob(SQLModel, table=True):
    """Bytes of a message or document, AES-256-GCM encrypted (nonce ‖ ciphertext ‖ tag)."""

    __tablename__ = "blob"

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    key_id: str = Field(max_length=40)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # In an object store (`blobs_s3`): the object's key, and `data` is empty.
    object_key: str | None = Field(default=None, max_length=200, nullable=True, index=True)


class BlobObject(SQLModel, table=True):
    """An object of the S3 blob store, as the collector sees it (`blobs_s3`): "live",
    "deleting" (doomed: a writer naming it is refused, 451) or "deleted" (a writer
    naming it uploads it again)."""

    __tablename__ = "blob_object"

    object_key: str = Field(primary_key=True, max_length=200)
    state: str = Field(max_length=10)
    touched_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class Subscription(SQLModel, table=True):
    """A name an IMAP user subscribed to (RFC 3501 §6.3.6), apart from the mailboxes: a
    name stays subscribed when its mailbox is deleted (LIST shows it `\\NonExistent`)."""

    __tablename__ = "subscription"

    account_id: int = Field(foreign_key="account.id", primary_key=True)
    name: str = Field(max_length=500, primary_key=True)


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
        Index("ix_dmp_document_record_newest", "record_id", "creation_time", "id"),
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


class CommitMark(SQLModel, table=True):
    """The last group commit of each writer process (PostgreSQL): after a COMMIT that
    got no answer, the writer reads it on the new primary to learn whether it committed."""

    __tablename__ = "commit_mark"
    writer: str = Field(primary_key=True, max_length=200)
    batch: int = Field(sa_column=Column(BigInteger, nullable=False))


class RecentSubmission(SQLModel, table=True):
    """A message stored in the last minutes, by the digest of its Message-ID, envelope
    sender and recipients: its retry (a lost 250) is answered, not stored again."""

    __tablename__ = "recent_submission"
    key: str = Field(primary_key=True, max_length=64)
    queue_id: str = Field(max_length=32)
    at: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))


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
    __table_args__ = (Index("ix_dmp_trace_ins_actor_action", "ins", "actor", "action"),)

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
subscription_table = Subscription.__table__  # type: ignore[attr-defined]
message_table = Message.__table__  # type: ignore[attr-defined]
blob_table = Blob.__table__  # type: ignore[attr-defined]
blob_object_table = BlobObject.__table__  # type: ignore[attr-defined]
patient_table = Patient.__table__  # type: ignore[attr-defined]
conversation_table = Conversation.__table__  # type: ignore[attr-defined]
participant_table = ConversationParticipant.__table__  # type: ignore[attr-defined]
conversation_message_table = ConversationMessage.__table__  # type: ignore[attr-defined]
trusted_domain_table = TrustedDomain.__table__  # type: ignore[attr-defined]
outbox_table = Outbox.__table__  # type: ignore[attr-defined]
expunged_table = Expunged.__table__  # type: ignore[attr-defined]
dmp_record_table = DMPRecord.__table__  # type: ignore[attr-defined]
dmp_document_table = DMPDocument.__table__  # type: ignore[attr-defined]
dmp_person_table = DMPPerson.__table__  # type: ignore[attr-defined]
dmp_authorization_table = DMPAuthorization.__table__  # type: ignore[attr-defined]
dmp_trace_table = DMPTrace.__table__  # type: ignore[attr-defined]
metadata = SQLModel.metadata

# The annuaire's tables (two swappable sets per kind of extraction file).
annuaire_tables.define(metadata)
# The notifications' and the patient space's tables, in their own modules (registered in
# the same metadata).
from mss.store.notify_tables import (  # noqa: E402
    contact_status_table as contact_status_table,
)
from mss.store.notify_tables import (  # noqa: E402
    mailbox_webhook_table as mailbox_webhook_table,
)
from mss.store.notify_tables import notify_log_table as notify_log_table  # noqa: E402
from mss.store.notify_tables import (  # noqa: E402
    notify_preference_table as notify_preference_table,
)
from mss.store.notify_tables import (  # noqa: E402
    push_subscription_table as push_subscription_table,
)
from mss.store.space_tables import (  # noqa: E402
    space_representation_table as space_representation_table,
)
from mss.store.space_tables import space_session_table as space_session_table  # noqa: E402
