"""`MailboxStore`: the port through which IMAP reads and changes mailboxes.

The session asks for what a command needs by name and never sees a database
connection; the composition root (`mss.app`) passes the implementation
(`mss.store.imapstore.ImapStore`, over SQLite or PostgreSQL). Every change bumps
the mailbox's modseq (RFC 7162) in the same transaction and is announced to the
watching sessions through the `MailboxBus` after commit. The values exchanged
are the store's plain records (`MailboxInfo`, `FlagState`...).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from mss.store.folders import MailboxInfo, MailboxStatus
from mss.store.imapviews import Key, MailboxChanges, OpenedMailbox, SearchResult
from mss.store.messages import StoreResult
from mss.store.quotas import Quota, Usage


class MailboxStore(Protocol):
    """What IMAP needs of the mailboxes of its accounts."""

    # --- accounts and mailboxes -------------------------------------------------------------

    async def account_id(self, address: str) -> int | None:
        """The account behind a login address, if it exists."""

    async def marks(self, mailbox_ids: list[int]) -> dict[int, tuple[int, int]]:
        """(HIGHESTMODSEQ, UIDNEXT) of these mailboxes as committed now (a small read)."""

    async def quota(self, account_id: int) -> tuple[Quota, Usage]:
        """The account's limits and what it holds now: mailboxes, messages, bytes
        (GETQUOTA)."""

    async def mailbox(self, account_id: int, name: str) -> MailboxInfo | None:
        """A mailbox by name (INBOX in any case), or None."""

    async def mailboxes(self, account_id: int) -> list[MailboxInfo]:
        """Every mailbox of the account (LIST, LSUB)."""

    async def status(self, box: MailboxInfo) -> MailboxStatus:
        """Message counts and the first unseen message (STATUS, SELECT)."""

    async def create(self, account_id: int, name: str, special_use: str | None) -> None:
        """Create a mailbox and its missing parents (RFC 3501 §6.3.3); past the
        account's mailboxes, `MailboxError` with [LIMIT]."""

    async def delete(self, account_id: int, name: str) -> None:
        """Delete a mailbox and its messages; raises `MailboxError` when refused."""

    async def rename(self, account_id: int, old: str, new: str) -> None:
        """Rename a mailbox and its children; INBOX's messages move (RFC 3501 §6.3.5)."""

    async def subscribe(self, account_id: int, name: str, subscribed: bool) -> None:
        """SUBSCRIBE or UNSUBSCRIBE."""

    async def subscriptions(self, account_id: int) -> set[str]:
        """The names the account subscribed to, whether their mailboxes exist or not."""

    # --- the selected mailbox ---------------------------------------------------------------

    async def claim_recent(self, mailbox_id: int) -> tuple[int, int]:
        """The UID range [first, uidnext) this session sees as \\Recent (RFC 3501 §2.3.2)."""

    async def open(self, mailbox_id: int) -> OpenedMailbox | None:
        """The mailbox, its UIDs and status in one snapshot (SELECT); None if deleted."""

    async def changes(self, mailbox_id: int, modseq: int, last_uid: int) -> MailboxChanges:
        """New UIDs after `last_uid`, flag changes and expunges after `modseq`."""

    # --- messages -----------------------------------------------------------------------------

    async def append(
        self, mailbox_id: int, message: bytes, flags: Sequence[str], internal_date: int | None
    ) -> int:
        """APPEND: store the message durably; its UID. Past the quota, `MailboxError` with
        [OVERQUOTA] (RFC 9208 §4.3), as for `append_many` and `copy`."""

    async def append_many(
        self, mailbox_id: int, messages: Sequence[tuple[bytes, Sequence[str], int | None]]
    ) -> list[int]:
        """MULTIAPPEND: (message, flags, internal date) stored all together or not at all;
        their UIDs."""

    async def append_claiming(
        self, mailbox_id: int, messages: Sequence[tuple[bytes, Sequence[str], int | None]]
    ) -> tuple[list[int], tuple[int, int]]:
        """`append_many` to the mailbox the session has selected read-write, claiming its
        \\Recent messages in the same transaction (`claim_recent`): their UIDs, and the
        range claimed."""

    async def flag_rows(
        self, mailbox_id: int, uids: Sequence[int], *, everything: bool
    ) -> list[Any]:
        """(uid, flags, keywords, modseq) of these sorted UIDs (or of every message)."""

    async def fetch_rows(
        self, mailbox_id: int, uids: Sequence[int], fields: Sequence[str], *, everything: bool
    ) -> dict[int, Any]:
        """uid → (uid, *fields) of the messages that still exist (FETCH)."""

    async def blob(self, blob_id: int) -> bytes:
        """A message's bytes, decrypted."""

    async def store_flags(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        mode: str,
        flags: Sequence[str],
        unchanged_since: int | None = None,
    ) -> StoreResult:
        """STORE: `mode` is add, remove or replace (RFC 7162 UNCHANGEDSINCE)."""

    async def copy(
        self, source: int, uids: Sequence[int], target: int, *, move: bool
    ) -> list[tuple[int, int]]:
        """COPY or MOVE: (source UID, new UID) pairs (RFC 4315 UIDPLUS)."""

    async def expunge(self, mailbox_id: int, among: Sequence[int] | None = None) -> list[int]:
        """Remove the messages flagged \\Deleted (among these UIDs); the UIDs removed."""

    async def search(self, mailbox_id: int, keys: Sequence[Key], view: list[int]) -> SearchResult:
        """The messages among `view` (sorted UIDs) matching every key (RFC 3501 §6.4.4);
        raises `InputError` for a key it cannot answer."""
