"""Per-account quotas: mailboxes (folders), messages, and bytes of messages.

The limits come from the settings (`[limits]`: `max_folders`, `max_messages`,
`max_storage`; 0 = none), unless the account has its own (`account.quota_*`, set by
`mss pro quota`; NULL: the settings'). An account's usage is the sum of the counters each of its
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
- The server's own reports to a local sender (DSNs, MDNs) are delivered whatever the
  quota: small, and losing one would hide a failure from its sender.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, update

from mss.store.folders import MailboxError
from mss.store.models import account_table
from mss.store.sql import RawStatement, Tx

OVERQUOTA = "OVERQUOTA"  # RFC 5530 §3, RFC 9208 §4.3
LIMIT = "LIMIT"  # RFC 5530 §3: a server limit, here the number of mailboxes
RESOURCES = ("folders", "messages", "storage")


@dataclass(frozen=True, kw_only=True)
class Quota:
    """The limits of an account; 0 means no limit."""

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


_STATE = (
    "SELECT a.quota_folders, a.quota_messages, a.quota_storage, count(m.id), "
    "coalesce(sum(m.message_count), 0), coalesce(sum(m.message_bytes), 0) "
    "FROM account a LEFT JOIN mailbox m ON m.account_id = a.id WHERE a.id = "
)
_ACCOUNT_STATE = RawStatement(_STATE + "? GROUP BY a.id")
_OWNER_STATE = RawStatement(_STATE + "(SELECT account_id FROM mailbox WHERE id = ?) GROUP BY a.id")


def _state(row: Any, default: Quota) -> tuple[Quota, Usage]:
    if row is None:  # no such account (deleted meanwhile): nothing to hold
        return default, Usage(0, 0, 0)
    own = {name: row[i] for i, name in enumerate(RESOURCES) if row[i] is not None}
    return replace(default, **own), Usage(int(row[3]), int(row[4]), int(row[5]))


def account_quota(conn: Connection, account_id: int, default: Quota) -> tuple[Quota, Usage]:
    """The account's limits (its own, else `default`) and what it holds now."""
    return _state(_ACCOUNT_STATE.first(conn, account_id), default)


def owner_quota(conn: Connection, mailbox_id: int, default: Quota) -> tuple[Quota, Usage]:
    """The same, for the account owning this mailbox (SMTP knows the INBOX)."""
    return _state(_OWNER_STATE.first(conn, mailbox_id), default)


def set_account_quota(tx: Tx, account_id: int, **limits: int | None) -> None:
    """An account's own limits (`folders`, `messages`, `storage`): a number (0: none),
    or None to follow the settings again. Those not named are left as they are."""
    values = {f"quota_{name}": value for name, value in limits.items() if name in RESOURCES}
    if values:
        tx.conn.execute(
            update(account_table).where(account_table.c.id == account_id).values(values)
        )


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
