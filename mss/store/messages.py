"""Messages as IMAP sees them: UIDs, flags, fetch rows, expunge, copy.

Flags are a bit mask for the system flags (RFC 3501 §2.3.2) plus a
space-separated keyword list. Every change gets a new modseq (RFC 7162) from
the mailbox's HIGHESTMODSEQ, in the same transaction, and expunged UIDs are
logged with theirs, so that any session (in any process) learns what changed
since the modseq it knows.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select

from mss.errors import NotFoundError
from mss.store.mailboxes import MailboxChanged, remember_keywords
from mss.store.models import (
    blob_table,
    dmp_document_table,
    mailbox_table,
    message_table,
    outbox_table,
)
from mss.store.sql import RawStatement, Tx

msg = message_table.c

FLAG_BITS = {"\\seen": 1, "\\answered": 2, "\\flagged": 4, "\\deleted": 8, "\\draft": 16}
BIT_NAMES = [(1, "\\Seen"), (2, "\\Answered"), (4, "\\Flagged"), (8, "\\Deleted"), (16, "\\Draft")]
DELETED = 8
SEEN = 1


def parse_flags(flags: Iterable[str]) -> tuple[int, frozenset[str]]:
    """Flag names to (system bits, keywords); \\Recent cannot be set and is ignored."""
    bits = 0
    keywords: set[str] = set()
    for flag in flags:
        bit = FLAG_BITS.get(flag.lower())
        if bit is not None:
            bits |= bit
        elif not flag.startswith("\\"):
            keywords.add(flag)
    return bits, frozenset(keywords)


def flag_names(bits: int, keywords: str | None) -> list[str]:
    names = [name for bit, name in BIT_NAMES if bits & bit]
    if keywords:
        names.extend(keywords.split())
    return names


def _keywords_text(keywords: Iterable[str]) -> str | None:
    return " ".join(sorted(keywords)) or None


def _ranges(uids: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted UIDs as (first, last) runs."""
    runs: list[tuple[int, int]] = []
    for uid in uids:
        if runs and uid == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], uid)
        else:
            runs.append((uid, uid))
    return runs


def uid_condition(uids: Sequence[int]) -> Any:
    """A WHERE clause for a sorted list of UIDs: BETWEEN runs, or IN lists when scattered."""
    runs = _ranges(uids)
    if len(runs) <= 20:
        return or_(*(msg.uid.between(a, b) if a != b else msg.uid == a for a, b in runs))
    return msg.uid.in_(list(uids))


_UID_LIST = {
    # One string instead of one row per message: 100,000 UIDs load in milliseconds.
    "sqlite": "SELECT group_concat(uid) FROM (SELECT uid FROM message WHERE mailbox_id = ? "
    "ORDER BY uid)",
    "postgresql": "SELECT string_agg(uid::text, ',' ORDER BY uid) FROM message "
    "WHERE mailbox_id = %s",
}


def uids_of(conn: Connection, mailbox_id: int) -> array[int]:
    """The mailbox's UIDs, sorted, as 32-bit integers (RFC 3501 §2.3.1.1)."""
    text = conn.exec_driver_sql(_UID_LIST[conn.dialect.name], (mailbox_id,)).scalar()
    return array("I", map(int, text.split(","))) if text else array("I")


_NEW_UIDS = RawStatement("SELECT uid FROM message WHERE mailbox_id = ? AND uid > ? ORDER BY uid")


def new_uids(conn: Connection, mailbox_id: int, after: int) -> list[int]:
    return [row[0] for row in _NEW_UIDS.all(conn, mailbox_id, after)]


@dataclass(frozen=True, slots=True)
class FlagState:
    uid: int
    flags: int
    keywords: str | None
    modseq: int

    @property
    def names(self) -> list[str]:
        return flag_names(self.flags, self.keywords)


_FLAG_CHANGES = RawStatement(
    "SELECT uid, flags, keywords, modseq FROM message "
    "WHERE mailbox_id = ? AND modseq > ? AND uid < ? ORDER BY uid"
)
_EXPUNGED_SINCE = RawStatement(
    "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid"
)


def flag_changes(conn: Connection, mailbox_id: int, since: int, upto_uid: int) -> list[FlagState]:
    """Flags of the messages (UID < upto_uid) changed after modseq `since`."""
    return [FlagState(*row) for row in _FLAG_CHANGES.all(conn, mailbox_id, since, upto_uid)]


def expunged_since(conn: Connection, mailbox_id: int, since: int) -> list[int]:
    return [row[0] for row in _EXPUNGED_SINCE.all(conn, mailbox_id, since)]


def uid_sql(uids: Sequence[int]) -> tuple[str, list[int]]:
    """A condition on `uid` for a sorted list of UIDs, with its parameters: BETWEEN runs,
    or an IN list when they are scattered."""
    runs = _ranges(uids)
    if len(runs) <= 20:
        parts, params = [], []
        for first, last in runs:
            if first == last:
                parts.append("uid = ?")
                params.append(first)
            else:
                parts.append("uid BETWEEN ? AND ?")
                params.extend((first, last))
        return "(" + " OR ".join(parts) + ")", params
    return "uid IN (" + ",".join("?" * len(uids)) + ")", list(uids)


_SELECTS: dict[tuple[str, ...], str] = {}


def rows_for(
    conn: Connection, mailbox_id: int, uids: Sequence[int], columns: Sequence[Any]
) -> dict[int, Any]:
    """uid → row of `columns` (UID first) for the given sorted UIDs that still exist."""
    if not uids:
        return {}
    names = tuple(c.name for c in columns)
    head = _SELECTS.get(names)
    if head is None:
        head = _SELECTS[names] = (
            "SELECT " + ", ".join(("uid", *names)) + " FROM message WHERE mailbox_id = ? AND "
        )
    out: dict[int, Any] = {}
    chunk = 5000
    for i in range(0, len(uids), chunk):
        condition, params = uid_sql(uids[i : i + chunk])
        for row in RawStatement(head + condition).all(conn, mailbox_id, *params):
            out[row[0]] = row
    return out


def all_rows(conn: Connection, mailbox_id: int, columns: Sequence[Any]) -> Any:
    """Every message's `columns` (UID first), in UID order: FETCH 1:* without a filter."""
    return conn.execute(
        select(msg.uid, *columns).where(msg.mailbox_id == mailbox_id).order_by(msg.uid)
    )


_ALL_FLAGS = RawStatement(
    "SELECT uid, flags, keywords, modseq FROM message WHERE mailbox_id = ? ORDER BY uid"
)


def flag_rows(conn: Connection, mailbox_id: int, uids: Sequence[int] | None) -> list[Any]:
    """(uid, flags, keywords, modseq) of the given sorted UIDs, or of every message."""
    if uids is None:
        return _ALL_FLAGS.all(conn, mailbox_id)
    rows = rows_for(conn, mailbox_id, uids, [msg.flags, msg.keywords, msg.modseq])
    return [tuple(rows[uid]) for uid in uids if uid in rows]


# --- changes ------------------------------------------------------------------------------------

_BUMP = RawStatement(
    "UPDATE mailbox SET highestmodseq = highestmodseq + ? WHERE id = ? "
    "RETURNING highestmodseq, uidnext"
)
_SET_FLAGS = RawStatement(
    "UPDATE message SET flags = ?, keywords = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?"
)


def _bump(tx: Tx, mailbox_id: int, count: int) -> tuple[int, int]:
    """Reserve `count` modseqs; return the first and the mailbox's UIDNEXT."""
    row = _BUMP.first(tx.conn, count, mailbox_id)
    if row is None:
        raise NotFoundError(f"mailbox {mailbox_id} does not exist")
    highest, uidnext = int(row[0]), int(row[1])
    tx.after_commit(MailboxChanged(mailbox_id, uidnext, highest))
    return highest - count + 1, uidnext


@dataclass(frozen=True, slots=True)
class StoreResult:
    changed: list[FlagState]  # messages whose flags changed, with their new state
    unchanged: list[FlagState]  # messages already in the asked state
    modified: list[int]  # UIDs refused by UNCHANGEDSINCE (RFC 7162 §3.1.3)


def store_flags(
    tx: Tx,
    mailbox_id: int,
    uids: Sequence[int],
    mode: str,
    flags: Iterable[str],
    unchanged_since: int | None = None,
) -> StoreResult:
    """STORE: `mode` is add, remove or replace."""
    bits, keywords = parse_flags(flags)
    rows = rows_for(tx.conn, mailbox_id, uids, [msg.flags, msg.keywords, msg.modseq])
    changes: list[tuple[int, int, str | None]] = []
    unchanged: list[FlagState] = []
    modified: list[int] = []
    for uid in uids:
        row = rows.get(uid)
        if row is None:
            continue  # expunged meanwhile
        _, old_bits, old_keywords, modseq = row
        if unchanged_since is not None and modseq > unchanged_since:
            modified.append(uid)
            continue
        current = set(old_keywords.split()) if old_keywords else set()
        if mode == "add":
            new_bits, new_keywords = old_bits | bits, current | keywords
        elif mode == "remove":
            new_bits, new_keywords = old_bits & ~bits, current - keywords
        else:
            new_bits, new_keywords = bits, set(keywords)
        text = _keywords_text(new_keywords)
        if new_bits == old_bits and text == (old_keywords or None):
            unchanged.append(FlagState(uid, old_bits, old_keywords, modseq))
        else:
            changes.append((uid, new_bits, text))
    changed: list[FlagState] = []
    if changes:
        if mode != "remove":
            remember_keywords(tx, mailbox_id, keywords)
        first, _ = _bump(tx, mailbox_id, len(changes))
        params = []
        for i, (uid, new_bits, text) in enumerate(changes):
            changed.append(FlagState(uid, new_bits, text, first + i))
            params.append((new_bits, text, first + i, mailbox_id, uid))
        _SET_FLAGS.many(tx.conn, params)
    return StoreResult(changed, unchanged, modified)


_DELETED = f"SELECT uid FROM message WHERE mailbox_id = ? AND flags & {DELETED} != 0"
_DELETED_ALL = RawStatement(_DELETED + " ORDER BY uid")
_LOG_EXPUNGE = RawStatement("INSERT INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)")


def deleted_uids(
    conn: Connection, mailbox_id: int, among: Sequence[int] | None = None
) -> list[int]:
    if among is None:
        return [row[0] for row in _DELETED_ALL.all(conn, mailbox_id)]
    found: list[int] = []
    for i in range(0, len(among), 5000):
        condition, params = uid_sql(among[i : i + 5000])
        query = RawStatement(f"{_DELETED} AND {condition} ORDER BY uid")
        found.extend(row[0] for row in query.all(conn, mailbox_id, *params))
    return found


_RELEASE = RawStatement(
    "UPDATE mailbox SET message_count = message_count - ?, message_bytes = message_bytes - ? "
    "WHERE id = ?"
)


def expunge_uids(tx: Tx, mailbox_id: int, uids: Sequence[int]) -> list[int]:
    """Remove these messages; log them as expunged at a new modseq. Returns those removed.
    The mailbox's usage (quotas) goes down by what they held."""
    rows = rows_for(tx.conn, mailbox_id, uids, [msg.size])
    present = sorted(rows)
    if not present:
        return []
    _RELEASE.run(tx.conn, len(present), sum(int(row[1]) for row in rows.values()), mailbox_id)
    modseq, _ = _bump(tx, mailbox_id, 1)
    for i in range(0, len(present), 5000):
        condition, params = uid_sql(present[i : i + 5000])
        RawStatement(f"DELETE FROM message WHERE mailbox_id = ? AND {condition}").run(
            tx.conn, mailbox_id, *params
        )
    _LOG_EXPUNGE.many(tx.conn, [(mailbox_id, uid, modseq) for uid in present])
    return present


_COPY_COLUMNS = (
    msg.flags,
    msg.keywords,
    msg.internal_date,
    msg.sent_date,
    msg.size,
    msg.blob_id,
    msg.message_id,
    msg.in_reply_to,
    msg.refs,
    msg.subject,
    msg.envelope,
    msg.body_structure,
    msg.mss_headers,
    msg.header_text,
)
_SIZE_AT = 1 + [column.name for column in _COPY_COLUMNS].index("size")  # after the UID


def copy_messages(tx: Tx, source: int, uids: Sequence[int], target: int) -> list[tuple[int, int]]:
    """COPY: new rows in `target` sharing the blobs; (source UID, new UID) pairs (UIDPLUS)."""
    rows = rows_for(tx.conn, source, uids, _COPY_COLUMNS)
    present = [uid for uid in uids if uid in rows]
    if not present:
        return []
    count = len(present)
    allocated = tx.conn.execute(
        mailbox_table.update()
        .where(mailbox_table.c.id == target)
        .values(
            uidnext=mailbox_table.c.uidnext + count,
            highestmodseq=mailbox_table.c.highestmodseq + count,
            message_count=mailbox_table.c.message_count + count,
            message_bytes=mailbox_table.c.message_bytes
            + sum(int(rows[uid][_SIZE_AT]) for uid in present),
        )
        .returning(mailbox_table.c.uidnext, mailbox_table.c.highestmodseq)
    ).first()
    if allocated is None:
        raise NotFoundError(f"mailbox {target} does not exist")
    first_uid = allocated.uidnext - count
    first_modseq = allocated.highestmodseq - count + 1
    names = [
        "flags",
        "keywords",
        "internal_date",
        "sent_date",
        "size",
        "blob_id",
        "message_id",
        "in_reply_to",
        "refs",
        "subject",
        "envelope",
        "body_structure",
        "mss_headers",
        "header_text",
    ]
    values = []
    pairs = []
    for i, uid in enumerate(present):
        row = rows[uid]
        record = dict(zip(names, row[1:], strict=True))
        record.update(mailbox_id=target, uid=first_uid + i, modseq=first_modseq + i)
        values.append(record)
        pairs.append((uid, first_uid + i))
    tx.conn.execute(insert(message_table), values)
    remember_keywords(
        tx, target, {k for v in values if v["keywords"] for k in v["keywords"].split()}
    )
    tx.after_commit(MailboxChanged(target, allocated.uidnext, allocated.highestmodseq))
    return pairs


def collect_orphan_blobs(tx: Tx, limit: int = 1000) -> int:
    """Delete blobs nothing refers to any more (after expunges): no message, no DMP
    document, no outbox row (relay, deposit, MDN: finished rows are purged later)."""
    b = blob_table.c
    users = (msg, outbox_table.c, dmp_document_table.c)
    orphans = tx.conn.execute(
        select(b.id)
        .where(*(~select(t.id).where(t.blob_id == b.id).exists() for t in users))
        .limit(limit)
    ).all()
    ids = [row[0] for row in orphans]
    if ids:
        tx.conn.execute(delete(blob_table).where(b.id.in_(ids)))
    return len(ids)


def count_messages(conn: Connection, mailbox_id: int) -> int:
    return int(conn.execute(select(func.count()).where(msg.mailbox_id == mailbox_id)).scalar_one())
