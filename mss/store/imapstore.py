"""`ImapStore`: the mailbox store IMAP uses (`mss.imap.backend.MailboxStore`), over SQL.

Each method is one thing an IMAP command needs, named for it (open a mailbox
for SELECT, what changed since a modseq, the rows FETCH renders, STORE's flag
change...), and runs the statements of `folders`, `messages` and `search`.
Reads bounded whatever the data (point lookups, a few rows, one blob) stay on
the event loop (`Store.read_fast`: SQLite answers in microseconds); reads that
grow with the mailbox go to a reader thread past the sizes below, so that no
session stalls the others. Writes go through the group-commit writer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from mss.store.accounts import get_account
from mss.store.api import Store
from mss.store.folders import (
    DELIMITER,
    MailboxInfo,
    MailboxStatus,
    claim_recent,
    create_mailbox,
    delete_mailbox,
    get_mailbox,
    holds_more_than,
    list_mailboxes,
    mailbox_by_id,
    mailbox_marks,
    mailbox_status,
    recent_range,
    rename_mailbox,
    set_subscribed,
    subscriptions,
)
from mss.store.imapviews import Key, MailboxChanges, OpenedMailbox, SearchResult
from mss.store.mailboxes import Target
from mss.store.messages import (
    StoreResult,
    all_rows,
    copy_messages,
    deleted_uids,
    expunge_uids,
    expunged_since,
    flag_changes,
    flag_rows,
    new_uids,
    parse_flags,
    rows_for,
    store_flags,
    uids_of,
)
from mss.store.models import message_table
from mss.store.quotas import Quota, Usage, account_quota, check_folders, check_room, owner_quota
from mss.store.search import body_reader, prepare, run
from mss.store.sql import Conn, Tx

T = TypeVar("T")

# Reads bounded by these sizes run on the event loop (SQLite: microseconds);
# larger ones go to a reader thread so that no session stalls the others.
SMALL_MAILBOX = 5000  # messages: SELECT, STATUS, FETCH FLAGS of everything
SMALL_READ = 500  # messages: FETCH rows, SEARCH


class ImapStore:
    """`MailboxStore` over the SQL `Store` (SQLite or PostgreSQL), within the accounts'
    quotas (`quota`, or an account's own: store/quotas.py), checked in the transaction
    that writes."""

    def __init__(self, store: Store, quota: Quota | None = None) -> None:
        self._store = store
        self._quota = quota or Quota()

    def __repr__(self) -> str:
        return f"ImapStore({self._store!r})"

    async def _read(self, fn: Callable[[Conn], T], *, small: bool) -> T:
        """Small reads run on the event loop (SQLite), big ones on a reader thread."""
        return await (self._store.read_fast(fn) if small else self._store.read(fn))

    # --- accounts and mailboxes -------------------------------------------------------------

    async def account_id(self, address: str) -> int | None:
        account = await self._store.read_fast(lambda c: get_account(c, address))
        return None if account is None else account.id

    async def marks(self, mailbox_ids: list[int]) -> dict[int, tuple[int, int]]:
        return await self._store.read_fast(lambda c: mailbox_marks(c, mailbox_ids))

    async def mailbox(self, account_id: int, name: str) -> MailboxInfo | None:
        return await self._store.read_fast(lambda c: get_mailbox(c, account_id, name))

    async def mailboxes(self, account_id: int) -> list[MailboxInfo]:
        return await self._store.read_fast(lambda c: list_mailboxes(c, account_id))

    async def status(self, box: MailboxInfo) -> MailboxStatus:
        small = box.uidnext <= SMALL_MAILBOX
        return await self._read(lambda c: mailbox_status(c, box), small=small)

    async def quota(self, account_id: int) -> tuple[Quota, Usage]:
        return await self._store.read_fast(lambda c: account_quota(c, account_id, self._quota))

    async def create(self, account_id: int, name: str, special_use: str | None) -> None:
        def create(tx: Tx) -> None:
            _create_with_parents(tx, account_id, name, special_use)
            self._check_folders(tx, account_id)

        await self._store.write(create)

    async def delete(self, account_id: int, name: str) -> None:
        await self._store.write(lambda tx: delete_mailbox(tx, account_id, name))

    async def rename(self, account_id: int, old: str, new: str) -> None:
        def rename(tx: Tx) -> None:
            rename_mailbox(tx, account_id, old, new)
            self._check_folders(tx, account_id)  # renaming INBOX creates the new name

        await self._store.write(rename)

    def _check_folders(self, tx: Tx, account_id: int) -> None:
        check_folders(*account_quota(tx.conn, account_id, self._quota))

    async def subscribe(self, account_id: int, name: str, subscribed: bool) -> None:
        await self._store.write(lambda tx: set_subscribed(tx, account_id, name, subscribed))

    async def subscriptions(self, account_id: int) -> set[str]:
        return await self._store.read_fast(lambda c: subscriptions(c, account_id))

    # --- the selected mailbox ---------------------------------------------------------------

    async def claim_recent(self, mailbox_id: int) -> tuple[int, int]:
        # Nothing recent left to claim (as committed now): no write, the same answer
        seen = await self._store.read_fast(lambda c: recent_range(c, mailbox_id))
        if seen is not None and seen[0] >= seen[1]:
            return seen
        return await self._store.write(lambda tx: claim_recent(tx, mailbox_id))

    async def open(self, mailbox_id: int) -> OpenedMailbox | None:
        big = await self._store.read_fast(lambda c: holds_more_than(c, mailbox_id, SMALL_MAILBOX))
        return await self._read(lambda c: _open(c, mailbox_id), small=not big)

    async def changes(self, mailbox_id: int, modseq: int, last_uid: int) -> MailboxChanges:
        return await self._store.read_fast(lambda c: _changes(c, mailbox_id, modseq, last_uid))

    # --- messages -----------------------------------------------------------------------------

    async def append(
        self, mailbox_id: int, message: bytes, flags: Sequence[str], internal_date: int | None
    ) -> int:
        # One write of its own, not a bulk delivery: the quota read in its transaction
        # sees the APPENDs committed in the same batch before it (exact, store/quotas.py)
        [uid] = await self.append_many(mailbox_id, [(message, flags, internal_date)])
        return uid

    async def append_many(
        self, mailbox_id: int, messages: Sequence[tuple[bytes, Sequence[str], int | None]]
    ) -> list[int]:
        return await self._append(mailbox_id, messages, None)

    async def append_claiming(
        self, mailbox_id: int, messages: Sequence[tuple[bytes, Sequence[str], int | None]]
    ) -> tuple[list[int], tuple[int, int]]:
        claimed: dict[str, tuple[int, int]] = {}  # set again if the write runs again

        def claim(tx: Tx) -> None:
            claimed["range"] = claim_recent(tx, mailbox_id)

        uids = await self._append(mailbox_id, messages, claim)
        return uids, claimed["range"]

    async def _append(
        self,
        mailbox_id: int,
        messages: Sequence[tuple[bytes, Sequence[str], int | None]],
        after: Callable[[Tx], None] | None,
    ) -> list[int]:
        together = []
        for raw, flags, when in messages:
            bits, keywords = parse_flags(flags)
            together.append((raw, [Target(mailbox_id, bits, " ".join(sorted(keywords)) or None)],
                             when))  # fmt: skip
        room = self._room_for(mailbox_id, len(messages), sum(len(m[0]) for m in messages))
        delivered = await self._store.deliver_together(together, decide=room, after=after)
        return [d.copies[0].uid for d in delivered]

    def _room_for(self, mailbox_id: int, count: int, size: int) -> Callable[[Tx], None]:
        """Before APPEND writes: room for `count` messages of `size` bytes in all?"""
        return lambda tx: check_room(*owner_quota(tx.conn, mailbox_id, self._quota), count, size)

    async def flag_rows(
        self, mailbox_id: int, uids: Sequence[int], *, everything: bool
    ) -> list[Any]:
        small = len(uids) <= SMALL_MAILBOX
        chosen = None if everything else uids
        return await self._read(lambda c: flag_rows(c, mailbox_id, chosen), small=small)

    async def fetch_rows(
        self, mailbox_id: int, uids: Sequence[int], fields: Sequence[str], *, everything: bool
    ) -> dict[int, Any]:
        columns = [message_table.c[name] for name in fields]

        def load(conn: Conn) -> dict[int, Any]:
            if everything:
                return {row[0]: row for row in all_rows(conn, mailbox_id, columns)}
            return rows_for(conn, mailbox_id, uids, columns)

        return await self._read(load, small=len(uids) <= SMALL_READ)

    async def blob(self, blob_id: int) -> bytes:
        blobs = self._store.blobs
        found: bytes = await self._store.read_blob(lambda c: blobs.get(c, blob_id))
        return found

    async def store_flags(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        mode: str,
        flags: Sequence[str],
        unchanged_since: int | None = None,
    ) -> StoreResult:
        return await self._store.write(
            lambda tx: store_flags(tx, mailbox_id, uids, mode, flags, unchanged_since)
        )

    async def copy(
        self, source: int, uids: Sequence[int], target: int, *, move: bool
    ) -> list[tuple[int, int]]:
        def copy(tx: Tx) -> list[tuple[int, int]]:
            pairs = _copy(tx, source, uids, target, move)
            if pairs and not move:  # over now: refused, rolled back (RFC 9208 §4.3)
                check_room(*owner_quota(tx.conn, target, self._quota), 0, 0)
            return pairs  # MOVE adds nothing to the account

        return await self._store.write(copy)

    async def expunge(self, mailbox_id: int, among: Sequence[int] | None = None) -> list[int]:
        return await self._store.write(lambda tx: _expunge(tx, mailbox_id, among))

    async def search(self, mailbox_id: int, keys: Sequence[Key], view: list[int]) -> SearchResult:
        query = prepare(keys, view[-1] if view else 0)
        blobs = self._store.blobs
        found = await self._read(
            lambda c: run(c, mailbox_id, query, view, body_reader(c, blobs)),
            small=len(view) <= SMALL_READ and not blobs.remote,  # bodies from afar: a thread
        )
        return SearchResult(found, query.max_modseq)


def _create_with_parents(tx: Tx, account_id: int, name: str, special_use: str | None) -> None:
    parts = name.split(DELIMITER)
    for depth in range(1, len(parts)):  # missing parents are created too
        parent = DELIMITER.join(parts[:depth])
        if get_mailbox(tx.conn, account_id, parent) is None:
            create_mailbox(tx, account_id, parent)
    create_mailbox(tx, account_id, name, special_use)


def _open(conn: Conn, mailbox_id: int) -> OpenedMailbox | None:
    current = mailbox_by_id(conn, mailbox_id)
    if current is None:
        return None
    return OpenedMailbox(current, uids_of(conn, mailbox_id), mailbox_status(conn, current))


def _changes(conn: Conn, mailbox_id: int, known: int, last: int) -> MailboxChanges:
    current = mailbox_by_id(conn, mailbox_id)
    if current is None:
        return MailboxChanges(None, [], [], [])
    if current.highestmodseq == known and current.uidnext == last + 1:
        return MailboxChanges(current, [], [], [])
    return MailboxChanges(
        current,
        new_uids(conn, mailbox_id, last),
        flag_changes(conn, mailbox_id, known, last + 1),
        expunged_since(conn, mailbox_id, known),
    )


def _copy(
    tx: Tx, source: int, uids: Sequence[int], target: int, move: bool
) -> list[tuple[int, int]]:
    pairs = copy_messages(tx, source, uids, target)
    if move:
        expunge_uids(tx, source, [uid for uid, _ in pairs])
    return pairs


def _expunge(tx: Tx, mailbox_id: int, among: Sequence[int] | None) -> list[int]:
    return expunge_uids(tx, mailbox_id, deleted_uids(tx.conn, mailbox_id, among))
