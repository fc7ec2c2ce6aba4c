"""Mailboxes as IMAP sees them: list, create, delete, rename, subscribe, status.

Names are stored as UTF-8 text with `/` as the hierarchy delimiter; `INBOX` is
always spelt so (IMAP's INBOX is case-insensitive, RFC 3501 §5.1). Every change
that other sessions must see bumps the mailbox's HIGHESTMODSEQ in the same
transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from mss.errors import InputError, NotFoundError
from mss.store.mailboxes import INBOX, MailboxChanged, allocate_uidvalidity
from mss.store.models import (
    SystemFlag,
    expunged_table,
    mailbox_table,
    message_table,
    subscription_table,
)
from mss.store.sql import RawStatement, Tx

DELIMITER = "/"
m = mailbox_table.c


class MailboxError(InputError):
    """A mailbox operation IMAP answers with NO; `code` is the response code (RFC 5530)."""

    def __init__(self, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.code = code


@dataclass(frozen=True, slots=True)
class MailboxInfo:
    id: int
    account_id: int
    name: str
    special_use: str | None
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    first_recent_uid: int
    keywords: frozenset[str] = frozenset()


def normalize_name(name: str) -> str:
    """`inbox` (any case) is INBOX, and so is the start of `inbox/child`."""
    head, sep, rest = name.partition(DELIMITER)
    if head.upper() == INBOX:
        return INBOX + sep + rest
    return name


_SELECT = (
    "SELECT id, account_id, name, special_use, uidvalidity, uidnext, highestmodseq, "
    "first_recent_uid, keywords FROM mailbox "
)
_LIST = RawStatement(_SELECT + "WHERE account_id = ? ORDER BY name")
_BY_NAME = RawStatement(_SELECT + "WHERE account_id = ? AND name = ?")
_BY_ID = RawStatement(_SELECT + "WHERE id = ?")


def _info(row: Any) -> MailboxInfo:
    box_id, account_id, name, use, validity, uidnext, modseq, recent, words = row
    keywords = frozenset(words.split()) if words else frozenset()
    return MailboxInfo(box_id, account_id, name, use, validity, uidnext, modseq, recent,
                       keywords)  # fmt: skip


def list_mailboxes(conn: Connection, account_id: int) -> list[MailboxInfo]:
    return [_info(row) for row in _LIST.all(conn, account_id)]


def get_mailbox(conn: Connection, account_id: int, name: str) -> MailboxInfo | None:
    row = _BY_NAME.first(conn, account_id, normalize_name(name))
    return None if row is None else _info(row)


def mailbox_by_id(conn: Connection, mailbox_id: int) -> MailboxInfo | None:
    row = _BY_ID.first(conn, mailbox_id)
    return None if row is None else _info(row)


def _check_name(name: str) -> None:
    if not name or len(name) > 400 or name.startswith(DELIMITER) or DELIMITER * 2 in name:
        raise MailboxError("Nom de boîte invalide (invalid mailbox name)", "CANNOT")
    if any(ord(c) < 32 or c in "*%" for c in name):
        raise MailboxError("Nom de boîte invalide (invalid mailbox name)", "CANNOT")


def create_mailbox(
    tx: Tx, account_id: int, name: str, special_use: str | None = None
) -> MailboxInfo:
    name = normalize_name(name.rstrip(DELIMITER))
    _check_name(name)
    if get_mailbox(tx.conn, account_id, name) is not None:
        raise MailboxError("Cette boîte existe déjà (mailbox exists)", "ALREADYEXISTS")
    uidvalidity = allocate_uidvalidity(tx, account_id)
    tx.conn.execute(
        insert(mailbox_table).values(
            account_id=account_id,
            name=name,
            special_use=special_use,
            uidvalidity=uidvalidity,
        )
    )
    created = get_mailbox(tx.conn, account_id, name)
    assert created is not None
    return created


def _delete_messages(tx: Tx, mailbox_id: int) -> None:
    tx.conn.execute(delete(message_table).where(message_table.c.mailbox_id == mailbox_id))
    tx.conn.execute(delete(expunged_table).where(expunged_table.c.mailbox_id == mailbox_id))


def delete_mailbox(tx: Tx, account_id: int, name: str) -> None:
    """Delete a mailbox and its messages; INBOX and mailboxes with children are refused."""
    box = get_mailbox(tx.conn, account_id, name)
    if box is None:
        raise MailboxError("Boîte inexistante (no such mailbox)", "NONEXISTENT")
    if box.name == INBOX:
        raise MailboxError("INBOX ne peut pas être supprimée (cannot delete INBOX)", "CANNOT")
    prefix = box.name + DELIMITER
    children = tx.conn.execute(
        select(func.count()).where(
            m.account_id == account_id, m.name.startswith(prefix, autoescape=True)
        )
    ).scalar_one()
    if children:
        raise MailboxError("Supprimez d'abord les sous-dossiers (mailbox has children)", "INUSE")
    _delete_messages(tx, box.id)
    tx.conn.execute(delete(mailbox_table).where(m.id == box.id))
    tx.after_commit(MailboxChanged(box.id, 0, 0))


def delete_all_mailboxes(tx: Tx, account_id: int) -> int:
    """Delete every mailbox of an account, its messages and subscriptions (`mss pro
    delete`); returns how many messages went. Sessions still open see them vanish."""
    boxes = [row[0] for row in tx.conn.execute(select(m.id).where(m.account_id == account_id))]
    count = tx.conn.execute(
        select(func.count()).select_from(message_table).where(message_table.c.mailbox_id.in_(boxes))
    ).scalar_one()
    for box in boxes:
        _delete_messages(tx, box)
        tx.after_commit(MailboxChanged(box, 0, 0))
    tx.conn.execute(delete(mailbox_table).where(m.account_id == account_id))
    sub = subscription_table
    tx.conn.execute(delete(sub).where(sub.c.account_id == account_id))
    return int(count)


def rename_mailbox(tx: Tx, account_id: int, old: str, new: str) -> None:
    """Rename a mailbox and its children; renaming INBOX moves its messages (RFC 3501 §6.3.5)."""
    box = get_mailbox(tx.conn, account_id, old)
    if box is None:
        raise MailboxError("Boîte inexistante (no such mailbox)", "NONEXISTENT")
    new = normalize_name(new.rstrip(DELIMITER))
    _check_name(new)
    if get_mailbox(tx.conn, account_id, new) is not None:
        raise MailboxError("Cette boîte existe déjà (mailbox exists)", "ALREADYEXISTS")
    if new == INBOX or new.startswith(box.name + DELIMITER):
        raise MailboxError("Renommage impossible (cannot rename there)", "CANNOT")
    if box.name == INBOX:
        target = create_mailbox(tx, account_id, new)
        from mss.store.messages import copy_messages, expunge_uids, uids_of

        uids = uids_of(tx.conn, box.id)
        copy_messages(tx, box.id, list(uids), target.id)
        expunge_uids(tx, box.id, list(uids))
        return
    children = tx.conn.execute(
        select(m.id, m.name).where(
            m.account_id == account_id, m.name.startswith(box.name + DELIMITER, autoescape=True)
        )
    ).all()
    renames = [(box.id, new), *((cid, new + cname[len(box.name) :]) for cid, cname in children)]
    for _box, name in renames:
        _check_name(name)  # a child's new name too: none past the limit
    _rename_subscriptions(tx, account_id, box.name, new)
    for mailbox_id, name in renames:
        uidvalidity = allocate_uidvalidity(tx, account_id)
        # A renamed mailbox keeps its messages and UIDs; a new UIDVALIDITY tells
        # clients that cached it under the old name to resynchronise.
        tx.conn.execute(
            update(mailbox_table)
            .where(m.id == mailbox_id)
            .values(name=name, uidvalidity=uidvalidity)
        )
        tx.after_commit(MailboxChanged(mailbox_id, 0, 0))


def set_subscribed(tx: Tx, account_id: int, name: str, subscribed: bool) -> None:
    """Subscribe to a name or not (RFC 3501 §6.3.6): a name may be subscribed whether or
    not its mailbox exists; asking twice changes nothing."""
    name = normalize_name(name.rstrip(DELIMITER))
    _check_name(name)
    if subscribed:
        _SUBSCRIBE.run(tx.conn, account_id, name)
    else:
        _UNSUBSCRIBE.run(tx.conn, account_id, name)


def subscriptions(conn: Connection, account_id: int) -> set[str]:
    """The names the account subscribed to, existing or not."""
    return {str(row[0]) for row in _SUBSCRIPTIONS.all(conn, account_id)}


def _rename_subscriptions(tx: Tx, account_id: int, old: str, new: str) -> None:
    """A renamed mailbox's subscriptions (its children's too) follow it."""
    prefix = old + DELIMITER
    under = [str(row[0]) for row in _SUBSCRIBED_UNDER.all(tx.conn, account_id, len(prefix), prefix)]
    for name in [old, *under]:
        renamed = new + name[len(old) :]
        _check_name(renamed)
        _UNSUBSCRIBE.run(tx.conn, account_id, renamed)  # a subscription the new name had
        _RENAME_SUBSCRIPTION.run(tx.conn, renamed, account_id, name)


_SUBSCRIBE = RawStatement(
    "INSERT INTO subscription (account_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING"
)
_UNSUBSCRIBE = RawStatement("DELETE FROM subscription WHERE account_id = ? AND name = ?")
_SUBSCRIPTIONS = RawStatement("SELECT name FROM subscription WHERE account_id = ?")
_SUBSCRIBED_UNDER = RawStatement(
    "SELECT name FROM subscription WHERE account_id = ? AND substr(name, 1, ?) = ?"
)
_RENAME_SUBSCRIPTION = RawStatement(
    "UPDATE subscription SET name = ? WHERE account_id = ? AND name = ?"
)


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    messages: int
    unseen: int
    recent: int
    size: int
    first_unseen_uid: int | None
    deleted: int = 0  # flagged \Deleted: what EXPUNGE would free (RFC 9208 §4.3)
    deleted_size: int = 0


_STATUS = RawStatement(
    "SELECT count(*), coalesce(sum(size), 0), "
    f"count(*) FILTER (WHERE flags & {SystemFlag.SEEN.value} = 0), "
    "count(*) FILTER (WHERE uid >= ?), "
    f"min(uid) FILTER (WHERE flags & {SystemFlag.SEEN.value} = 0), "
    f"count(*) FILTER (WHERE flags & {SystemFlag.DELETED.value} != 0), "
    f"coalesce(sum(size) FILTER (WHERE flags & {SystemFlag.DELETED.value} != 0), 0) "
    "FROM message WHERE mailbox_id = ?"
)


def mailbox_status(conn: Connection, box: MailboxInfo) -> MailboxStatus:
    row = _STATUS.first(conn, box.first_recent_uid, box.id)
    return MailboxStatus(
        messages=int(row[0]),
        size=int(row[1]),
        unseen=int(row[2]),
        recent=int(row[3]),
        first_unseen_uid=None if row[4] is None else int(row[4]),
        deleted=int(row[5]),
        deleted_size=int(row[6]),
    )


def mailbox_marks(conn: Connection, mailbox_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """(HIGHESTMODSEQ, UIDNEXT) of each mailbox that exists: they change with every change."""
    marks: dict[int, tuple[int, int]] = {}
    for i in range(0, len(mailbox_ids), 500):
        part = mailbox_ids[i : i + 500]
        query = RawStatement(
            "SELECT id, highestmodseq, uidnext FROM mailbox WHERE id IN ("
            + ",".join("?" * len(part))
            + ")"
        )
        for box, modseq, uidnext in query.all(conn, *part):
            marks[box] = (int(modseq), int(uidnext))
    return marks


_DATA_VERSION = RawStatement("PRAGMA data_version")


def data_version(conn: Connection) -> int:
    """SQLite: a number that changes when another connection commits (any process)."""
    return int(_DATA_VERSION.scalar(conn))


_NTH_MESSAGE = RawStatement(
    "SELECT uid FROM message WHERE mailbox_id = ? ORDER BY uid LIMIT 1 OFFSET ?"
)


def holds_more_than(conn: Connection, mailbox_id: int, count: int) -> bool:
    """Whether the mailbox holds more than `count` messages (an index walk of `count`)."""
    return _NTH_MESSAGE.first(conn, mailbox_id, count) is not None


def recent_range(conn: Connection, mailbox_id: int) -> tuple[int, int] | None:
    """[first_recent_uid, uidnext) of the mailbox: what a claim would take (None: no
    such mailbox)."""
    row = _RECENT.first(conn, mailbox_id)
    return None if row is None else (int(row[0]), int(row[1]))


def claim_recent(tx: Tx, mailbox_id: int) -> tuple[int, int]:
    """Make every message up to UIDNEXT non-recent for others; return the range this
    session sees as \\Recent: [first, uidnext) (RFC 3501 §2.3.2)."""
    found = recent_range(tx.conn, mailbox_id)
    if found is None:
        raise NotFoundError(f"mailbox {mailbox_id} does not exist")
    first, uidnext = found
    if first < uidnext:
        _CLAIM.run(tx.conn, uidnext, mailbox_id)
    return first, uidnext


_RECENT = RawStatement("SELECT first_recent_uid, uidnext FROM mailbox WHERE id = ?")
_CLAIM = RawStatement("UPDATE mailbox SET first_recent_uid = ? WHERE id = ?")
