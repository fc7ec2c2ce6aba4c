"""The notifications' tables (SQLModel, DOMAIN.md §8): the patients' preferences, their
push subscriptions, failing contacts, the notices' log, the APP mailboxes' webhooks.
Registered in the store's one metadata when `mss.store.models` is imported."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from mss.store.sql import BigId


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


notify_preference_table = NotifyPreference.__table__  # type: ignore[attr-defined]
push_subscription_table = PushSubscription.__table__  # type: ignore[attr-defined]
contact_status_table = ContactStatus.__table__  # type: ignore[attr-defined]
notify_log_table = NotifyLog.__table__  # type: ignore[attr-defined]
mailbox_webhook_table = MailboxWebhook.__table__  # type: ignore[attr-defined]
