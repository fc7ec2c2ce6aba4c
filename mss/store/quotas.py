"""Per-account quotas: mailboxes (folders), messages, and bytes of messages.

The limits come from the settings (`[limits]`: `max_folders`, `max_messages`,
`max_storage`; 0 = none). An account's usage is the sum of the counters each of its
mailboxes keeps (`mailbox.message_count`, `mailbox.message_bytes`, changed by the
very statements that add and remove messages: delivery, APPEND, COPY, EXPUNGE), so
reading it costs a scan of the account's few mailbox rows, whatever the number of
messages. Each copy counts (a message in INBOX and in Archive counts twice), as in
Dovecot; MOVE changes nothing.

Where each limit holds:
- IMAP APPEND, COPY (RFC 9208 §4.3: `NO [OVERQUOTA]`) and CREATE (`NO [LIMIT]`,
  RFC 5530) are checked in the transaction that writes: exact on SQLite (one writer);
  on PostgreSQL two sessions of one account writing at the same instant may both pass.
- SMTP (the MX and submission, to a local mailbox) refuses at RCPT an account already
  full (`452 4.2.2`, RFC 3463 "mailbox full"), as Postfix's quota-status policy does:
  SMTP has one reply to DATA for every recipient, so a message accepted at RCPT is
  delivered whatever its size. A mailbox may thus go past its storage by the
  messages accepted before it was full (at most one per transaction under way,
  each within `max_message_size`), like Dovecot's quota grace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from mss.store.folders import MailboxError
from mss.store.sql import RawStatement

OVERQUOTA = "OVERQUOTA"  # RFC 5530 §3, RFC 9208 §4.3
LIMIT = "LIMIT"  # RFC 5530 §3: a server limit, here the number of mailboxes


@dataclass(frozen=True, kw_only=True)
class Quota:
    """The limits of every account; 0 means no limit."""

    folders: int = 0
    messages: int = 0
    storage: int = 0  # bytes

    def full(self, usage: Usage) -> bool:
        """Nothing more fits: the account holds as many messages or bytes as allowed."""
        return bool(
            (self.messages and usage.messages >= self.messages)
            or (self.storage and usage.storage >= self.storage)
        )


@dataclass(frozen=True, slots=True)
class Usage:
    folders: int
    messages: int
    storage: int  # bytes


STORAGE_FULL = (
    "Quota de stockage du compte dépassé : supprimez des messages (account storage quota exceeded)"
)
MESSAGES_FULL = (
    "Nombre maximal de messages du compte atteint : supprimez des messages "
    "(account message quota exceeded)"
)


def too_many_folders(limit: int) -> MailboxError:
    return MailboxError(
        f"Nombre maximal de dossiers atteint ({limit}) : supprimez-en avant d'en créer "
        f"(too many mailboxes, at most {limit})",
        LIMIT,
    )


_USAGE = (
    "SELECT count(*), coalesce(sum(message_count), 0), coalesce(sum(message_bytes), 0) "
    "FROM mailbox WHERE account_id = "
)
_ACCOUNT_USAGE = RawStatement(_USAGE + "?")
_OWNER_USAGE = RawStatement(_USAGE + "(SELECT account_id FROM mailbox WHERE id = ?)")


def _usage(row: Any) -> Usage:
    return Usage(int(row[0]), int(row[1]), int(row[2]))


def usage(conn: Connection, account_id: int) -> Usage:
    """What the account holds now."""
    return _usage(_ACCOUNT_USAGE.first(conn, account_id))


def owner_usage(conn: Connection, mailbox_id: int) -> Usage:
    """What the account owning this mailbox holds now (SMTP knows the INBOX)."""
    return _usage(_OWNER_USAGE.first(conn, mailbox_id))


def check_room(quota: Quota, used: Usage, messages: int, size: int) -> None:
    """Refuse (`NO [OVERQUOTA]`) adding `messages` messages of `size` bytes in all."""
    if quota.messages and used.messages + messages > quota.messages:
        raise MailboxError(MESSAGES_FULL, OVERQUOTA)
    if quota.storage and used.storage + size > quota.storage:
        raise MailboxError(STORAGE_FULL, OVERQUOTA)


def check_folders(quota: Quota, used: Usage) -> None:
    """After CREATE in its transaction: refuse it (`NO [LIMIT]`, rolled back) when the
    account now has more mailboxes than allowed."""
    if quota.folders and used.folders > quota.folders:
        raise too_many_folders(quota.folders)
