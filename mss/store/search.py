"""IMAP SEARCH (RFC 3501 §6.4.4, RFC 7162 MODSEQ, RFC 5032 WITHIN) as SQL.

Every key that the columns can answer exactly becomes SQL (flags, keywords,
dates, sizes, UIDs, modseq). String keys on headers match `header_text` (the
case-folded, decoded header section stored at delivery): SQL selects the
candidates by substring, Python then checks the named field exactly. BODY and
TEXT decrypt the candidates' messages and look in their decoded text parts.

The keys are the tree the IMAP parser reads (`mss.imap.parsing.search`), seen
here through the `Key` and `Range` protocols (`imapviews`). Sequence numbers, RECENT, NEW and
OLD are turned into UID sets by the session before this module sees them.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, false, not_, or_, select, true

from mss.core.mime import Part, decode_body, decode_header_bytes, decode_text
from mss.errors import InputError
from mss.store.imapviews import Key, Range
from mss.store.messages import FLAG_BITS, uid_condition
from mss.store.models import message_table
from mss.store.ports import BlobStore
from mss.store.search_fields import address_text, field_values, sent_day

msg = message_table.c
_ADDRESS_FIELDS = {"FROM": "from", "TO": "to", "CC": "cc", "BCC": "bcc"}
# what `address_text` may write that the header did not hold as such: where the needle has
# none, it stands in the header as it is (a backslash may hide an escaped character)
_ADDRESS_MARKS = frozenset(' \t\r\n<>,;:"@()\\')


@dataclass(frozen=True, slots=True)
class Query:
    """A search tree prepared for one mailbox."""

    sql: Any  # a WHERE clause, exact when `check` is None
    check: Callable[[dict[str, Any]], bool] | None  # exact Python test on a row, if needed
    needs_body: bool
    max_modseq: bool  # the MODSEQ key was used: report the highest modseq


def _like(text: str) -> str:
    escaped = text.casefold().replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


def _day_start(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


# RFC 5322 §3.3: a zone is at most 99 hours 99 minutes from UTC
_ZONE_MARGIN = 100 * 3600
_DAY_TESTS: dict[str, Callable[[dt.date, dt.date], bool]] = {
    "BEFORE": lambda sent, day: sent < day,
    "ON": lambda sent, day: sent == day,
    "SINCE": lambda sent, day: sent >= day,
}


def _uid_ranges(ranges: Sequence[Range], largest: int) -> Any:
    parts = []
    for r in ranges:
        start = largest if r.start is None else r.start
        end = largest if r.end is None else r.end
        low, high = min(start, end), max(start, end)
        parts.append(msg.uid.between(low, high))
    return or_(*parts) if parts else false()


class _Compiler:
    def __init__(self, largest_uid: int) -> None:
        self.largest_uid = largest_uid
        self.needs_body = False
        self.needs_python = False
        self.max_modseq = False

    def compile(self, key: Key) -> tuple[Any, Callable[[dict[str, Any]], bool]]:
        """(SQL superset-or-exact clause, exact Python predicate) for one key."""
        kind = key.kind
        handler = getattr(self, f"_k_{kind.lower()}", None)
        if handler is None:
            raise InputError(f"search key {kind} not supported")
        result: tuple[Any, Callable[[dict[str, Any]], bool]] = handler(*key.args)
        return result

    # exact keys: SQL and Python agree
    def _exact(
        self, clause: Any, test: Callable[[dict[str, Any]], bool]
    ) -> tuple[Any, Callable[[dict[str, Any]], bool]]:
        return clause, test

    def _k_all(self) -> Any:
        return self._exact(true(), lambda r: True)

    def _k_flag(self, flag: str, positive: bool) -> Any:
        bit = FLAG_BITS.get(flag.lower())
        if bit is not None:
            has = msg.flags.op("&")(bit) != 0
            return self._exact(
                has if positive else not_(has), lambda r: bool(r["flags"] & bit) == positive
            )
        if flag.startswith("\\"):  # unknown system flag: never set
            return self._exact(false() if positive else true(), lambda r: not positive)
        pattern = f"% {flag.replace('!', '!!').replace('%', '!%').replace('_', '!_')} %"
        has = (" " + msg.keywords + " ").like(pattern, escape="!")

        def test(r: dict[str, Any]) -> bool:
            return (flag in (r["keywords"] or "").split()) == positive

        return self._exact(has if positive else or_(msg.keywords.is_(None), not_(has)), test)

    def _k_uid(self, ranges: Sequence[Range]) -> Any:
        clause = _uid_ranges(ranges, self.largest_uid)
        bounds = [
            (min(a, b), max(a, b))
            for a, b in (
                (
                    (self.largest_uid if r.start is None else r.start),
                    (self.largest_uid if r.end is None else r.end),
                )
                for r in ranges
            )
        ]
        return self._exact(clause, lambda r: any(lo <= r["uid"] <= hi for lo, hi in bounds))

    def _k_date(self, which: str, day: dt.date) -> Any:
        """BEFORE, ON, SINCE: the internal date's day in UTC, the zone FETCH INTERNALDATE
        shows; SENT*: the Date: field's day in its own zone (RFC 3501 §6.4.4)."""
        op = which.removeprefix("SENT")
        if which.startswith("SENT"):
            return self._sent_date(op, day)
        start, end = _day_start(day), _day_start(day + dt.timedelta(days=1))
        column = msg.internal_date
        if op == "BEFORE":
            return self._exact(column < start, lambda r: r["internal_date"] < start)
        if op == "ON":
            return self._exact(
                and_(column >= start, column < end),
                lambda r: start <= r["internal_date"] < end,
            )
        return self._exact(column >= start, lambda r: r["internal_date"] >= start)

    def _sent_date(self, op: str, day: dt.date) -> Any:
        """SQL narrows by the UTC instant (a zone is less than `_ZONE_MARGIN` away), Python
        compares the day of the Date: field; no date, no match."""
        self.needs_python = True
        start, end = _day_start(day), _day_start(day + dt.timedelta(days=1))
        compare = _DAY_TESTS[op]
        clause = {
            "BEFORE": msg.sent_date < start + _ZONE_MARGIN,
            "ON": msg.sent_date.between(start - _ZONE_MARGIN, end + _ZONE_MARGIN),
            "SINCE": msg.sent_date >= start - _ZONE_MARGIN,
        }[op]

        def test(r: dict[str, Any]) -> bool:
            if r["sent_date"] is None:
                return False
            values = field_values(r["header_text"] or "", "date")
            sent = sent_day(values[0]) if values else None
            return sent is not None and compare(sent, day)

        return clause, test

    def _k_larger(self, size: int) -> Any:
        return self._exact(msg.size > size, lambda r: r["size"] > size)

    def _k_smaller(self, size: int) -> Any:
        return self._exact(msg.size < size, lambda r: r["size"] < size)

    def _k_older(self, seconds: int) -> Any:
        limit = int(time.time()) - seconds
        return self._exact(msg.internal_date <= limit, lambda r: r["internal_date"] <= limit)

    def _k_younger(self, seconds: int) -> Any:
        limit = int(time.time()) - seconds
        return self._exact(msg.internal_date >= limit, lambda r: r["internal_date"] >= limit)

    def _k_modseq(self, modseq: int) -> Any:
        self.max_modseq = True
        return self._exact(msg.modseq >= modseq, lambda r: r["modseq"] >= modseq)

    # text keys: SQL gives candidates, Python decides
    def _k_header(self, name: str, needle: str) -> Any:
        self.needs_python = True
        folded = needle.casefold()
        field = name.lower()
        clause = (
            msg.header_text.like(_like(needle), escape="!")
            if needle
            else msg.header_text.like(f"%{field}:%")
        )

        def test(r: dict[str, Any]) -> bool:
            return any(folded in value for value in field_values(r["header_text"] or "", field))

        return clause, test

    def _k_address(self, field: str, needle: str) -> Any:
        """FROM, TO, CC, BCC: the addresses as written out by `address_text`, display
        names included (RFC 3501 §6.4.4 "contains the specified string")."""
        self.needs_python = True
        folded = needle.casefold()
        present = msg.header_text.like(f"%{field}:%")
        if folded and not _ADDRESS_MARKS & set(folded):
            present = and_(
                present,
                or_(
                    msg.header_text.like(_like(folded), escape="!"),
                    msg.header_text.like("%\\%", escape="!"),
                ),
            )

        def test(r: dict[str, Any]) -> bool:
            values = field_values(r["header_text"] or "", field)
            return any(folded in address_text(value) for value in values)

        return present, test

    def _k_string(self, which: str, needle: str) -> Any:
        if which in _ADDRESS_FIELDS:
            return self._k_address(_ADDRESS_FIELDS[which], needle)
        if which == "SUBJECT":
            return self._k_header("subject", needle)
        self.needs_python = True
        self.needs_body = True
        folded = needle.casefold()

        def test(r: dict[str, Any]) -> bool:
            body = r["body_text"]
            if folded in body:
                return True
            return which == "TEXT" and folded in (r["header_text"] or "")

        return true(), test

    # combinations
    def _k_and(self, keys: Sequence[Key]) -> Any:
        compiled = [self.compile(k) for k in keys]
        return and_(*(c[0] for c in compiled)), lambda r: all(c[1](r) for c in compiled)

    def _k_or(self, first: Key, second: Key) -> Any:
        a, b = self.compile(first), self.compile(second)
        return or_(a[0], b[0]), lambda r: a[1](r) or b[1](r)

    def _k_not(self, inner: Key) -> Any:
        before = self.needs_python
        clause, test = self.compile(inner)
        # a superset under NOT would lose matches: only exact clauses are negated in SQL
        exact = not (self.needs_python and not before) and not _contains_text_key(inner)
        return (not_(clause) if exact else true()), (lambda r: not test(r))


def _contains_text_key(key: Key) -> bool:
    if key.kind in ("HEADER", "STRING") or (key.kind == "DATE" and key.args[0].startswith("SENT")):
        return True
    return any(isinstance(a, Key) and _contains_text_key(a) for a in key.args) or any(
        isinstance(a, tuple) and any(isinstance(x, Key) and _contains_text_key(x) for x in a)
        for a in key.args
    )


def prepare(keys: Sequence[Key], largest_uid: int) -> Query:
    compiler = _Compiler(largest_uid)
    clause, test = compiler._k_and(keys)
    return Query(
        clause, test if compiler.needs_python else None, compiler.needs_body, compiler.max_modseq
    )


_ROW_COLUMNS = (
    msg.uid,
    msg.flags,
    msg.keywords,
    msg.internal_date,
    msg.sent_date,
    msg.size,
    msg.modseq,
    msg.header_text,
    msg.blob_id,
    msg.body_structure,
)


def run(
    conn: Connection,
    mailbox_id: int,
    query: Query,
    view: Sequence[int],
    body_text: Callable[[int, str], str],
) -> list[tuple[int, int]]:
    """(uid, modseq) of the matching messages among `view` (sorted UIDs)."""
    if not view:
        return []
    base = select(msg.uid, msg.modseq).where(msg.mailbox_id == mailbox_id, query.sql)
    if len(view) < 50000:
        base = base.where(uid_condition(list(view)))
    if query.check is None:
        rows = conn.execute(base.order_by(msg.uid))
        visible = set(view)
        return [(uid, modseq) for uid, modseq in rows if uid in visible]
    found = []
    visible = set(view)
    rows = conn.execute(
        select(*_ROW_COLUMNS).where(msg.mailbox_id == mailbox_id, query.sql).order_by(msg.uid)
    )
    for row in rows:
        record = dict(row._mapping)
        if record["uid"] not in visible:
            continue
        if query.needs_body:
            record["body_text"] = body_text(record["blob_id"], record["body_structure"])
        if query.check(record):
            found.append((record["uid"], record["modseq"]))
    return found


def searchable_body(raw: bytes, root: Part) -> str:
    """The text parts of a message, transfer encoding undone, case-folded."""
    texts: list[str] = []

    def walk(part: Part) -> None:
        if part.is_message and part.children:  # an attached message: its header is text too
            inner = part.children[0]
            texts.append(decode_header_bytes(raw[inner.header_start : inner.body_start]).casefold())
        if part.children:
            for child in part.children:
                walk(child)
            return
        if part.maintype != "text":
            return
        # the MIME decoder of FETCH BINARY and the patient space: never fails
        body = decode_body(raw[part.body_start : part.body_end], part.encoding)
        # an odd charset (`x-inconnu`, `undefined`, `punycode`…): UTF-8, else Latin-1
        charset = dict(part.params).get("charset", "utf-8")
        texts.append(decode_text(body, charset, decode_header_bytes).casefold())

    walk(root)
    return "\n".join(texts)


def body_reader(conn: Connection, blobs: BlobStore) -> Callable[[int, str], str]:
    """The searchable text of a message, from its blob and its stored structure."""

    def read(blob_id: int, structure: str) -> str:
        raw = blobs.get(conn, blob_id)
        return searchable_body(raw, Part.from_json(json.loads(structure)))

    return read
