"""The DMP as stored: records, document versions, the people in a special relation to
a record (médecins traitants DMP, blocked professionals) and authorisations.

Each function is one question or one change, named by what it does; the rules that
decide whether to ask it live in `mss/dmp/`. Times are stored aware, in UTC (a naive
time is taken as UTC); texts are cut to their column's length.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import Connection, delete, func, insert, or_, select, update

from mss.store.models import (
    dmp_authorization_table,
    dmp_document_table,
    dmp_person_table,
    dmp_record_table,
    patient_table,
    utcnow,
)
from mss.store.ports import BlobStore
from mss.store.sql import RawStatement, Tx

d = dmp_document_table.c
r = dmp_record_table.c
pp = dmp_person_table.c
au = dmp_authorization_table.c


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """Aware UTC (the store's convention); a naive time is taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _new_id(result: Any) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


# --- records -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordFacts:
    """What is stored of a known patient's DMP (no record row yet: all false, nobody)."""

    profile_status: str
    identity_status: str
    closed: bool = False
    oppose_bris_de_glace: bool = False
    oppose_centre15: bool = False
    people: tuple[tuple[str, str], ...] = ()  # (role, national id)


# Every consultation asks these first (plain SQL: see `RawStatement`)
_STANDING = RawStatement(
    "SELECT p.profile_status, p.identity_status, r.closed, r.oppose_bris_de_glace,"
    " r.oppose_centre15 FROM patient p LEFT JOIN dmp_record r ON r.ins = p.ins WHERE p.ins = ?",
    results=[patient_table.c.profile_status, patient_table.c.identity_status, r.closed,
             r.oppose_bris_de_glace, r.oppose_centre15],
)  # fmt: skip
_PEOPLE = RawStatement(
    "SELECT pp.role, pp.national_id FROM dmp_person pp"
    " JOIN dmp_record r ON r.id = pp.record_id WHERE r.ins = ?"
)
_AUTHORIZATION_EXPIRY = RawStatement(
    "SELECT au.expires_at FROM dmp_authorization au JOIN dmp_record r ON r.id = au.record_id"
    " WHERE r.ins = ? AND au.national_id = ?",
    results=[au.expires_at],
)


def record_facts(conn: Connection, ins: str) -> RecordFacts | None:
    """The patient's standing and their DMP's record; None for an unknown patient."""
    found = _STANDING.first(conn, ins)
    if found is None:
        return None
    profile_status, identity_status, closed, oppose_bris_de_glace, oppose_centre15 = found
    return RecordFacts(
        profile_status=profile_status, identity_status=identity_status,
        closed=bool(closed), oppose_bris_de_glace=bool(oppose_bris_de_glace),
        oppose_centre15=bool(oppose_centre15),
        people=tuple((role, national_id) for role, national_id in _PEOPLE.all(conn, ins)),
    )  # fmt: skip


def patient_birth_date(conn: Connection, ins: str) -> dt.date | None:
    birth: dt.date | None = conn.execute(
        select(patient_table.c.birth_date).where(patient_table.c.ins == ins)
    ).scalar()
    return birth


def ensure_record(tx: Tx, ins: str) -> int:
    """The id of the patient's record row, created on first use."""
    found = tx.conn.execute(select(r.id).where(r.ins == ins)).scalar()
    if found is not None:
        return int(found)
    return _new_id(tx.conn.execute(insert(dmp_record_table).values(ins=ins, closed=False)))


def update_record(
    tx: Tx, record_id: int, *, closed: bool | None = None,
    oppose_bris_de_glace: bool | None = None, oppose_centre15: bool | None = None,
) -> None:  # fmt: skip
    """Close or reopen the record (dated), set or lift the oppositions (None: unchanged)."""
    values: dict[str, Any] = {}
    if closed is not None:
        values["closed"] = closed
        values["closed_at"] = utcnow() if closed else None
    if oppose_bris_de_glace is not None:
        values["oppose_bris_de_glace"] = oppose_bris_de_glace
    if oppose_centre15 is not None:
        values["oppose_centre15"] = oppose_centre15
    if values:
        tx.conn.execute(update(dmp_record_table).where(r.id == record_id).values(**values))


# --- people and authorisations -----------------------------------------------------------------


def set_person(tx: Tx, record_id: int, role: str, national_id: str, present: bool) -> None:
    """Give a professional a role in this record (`present`), or take it away."""
    tx.conn.execute(
        delete(dmp_person_table).where(
            pp.record_id == record_id, pp.role == role, pp.national_id == national_id
        )
    )
    if present:
        tx.conn.execute(
            insert(dmp_person_table).values(record_id=record_id, role=role, national_id=national_id)
        )


def drop_authorization(tx: Tx, record_id: int, national_id: str) -> None:
    tx.conn.execute(
        delete(dmp_authorization_table).where(
            au.record_id == record_id, au.national_id == national_id
        )
    )


def grant_authorization(
    tx: Tx, record_id: int, national_id: str, basis: str, expires: dt.datetime
) -> None:
    """The professional's authorisation, replacing any earlier one."""
    drop_authorization(tx, record_id, national_id)
    tx.conn.execute(
        insert(dmp_authorization_table).values(
            record_id=record_id, national_id=national_id, basis=basis,
            granted_at=utcnow(), expires_at=expires,
        )
    )  # fmt: skip


def authorization_expiry(conn: Connection, ins: str, national_id: str) -> dt.datetime | None:
    """When the professional's authorisation on this DMP ends (None: they have none)."""
    found = _AUTHORIZATION_EXPIRY.first(conn, ins, national_id)
    return None if found is None else found[0]


# --- documents ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """One stored version of a document (its bytes are the blob `blob_id`)."""

    id: int
    unique_id: str
    set_id: str
    version: int
    superseded_by: int | None
    title: str
    class_code: str
    type_code: str
    format_code: str
    mime_type: str
    confidentiality: str  # space-separated codes
    masked: bool
    invisible_patient: bool
    hidden_from_representatives: bool
    author_national_id: str
    author_name: str
    author_profession: str
    creation_time: dt.datetime | None
    service_start: dt.datetime | None
    service_stop: dt.datetime | None
    deposited_at: dt.datetime
    size: int
    sha1: str
    blob_id: int


_DOCUMENT = select(*(d[f.name] for f in fields(StoredDocument))).join(
    dmp_record_table, r.id == d.record_id
)
_NEWEST_FIRST = (d.creation_time.desc(), d.id.desc())


def _documents(rows: Any) -> list[StoredDocument]:
    return [StoredDocument(*row) for row in rows]  # the columns in the fields' order


def document(conn: Connection, ins: str, document_id: int) -> StoredDocument | None:
    row = conn.execute(_DOCUMENT.where(r.ins == ins, d.id == document_id)).first()
    return None if row is None else StoredDocument(**row._mapping)


def current_documents(conn: Connection, ins: str) -> list[StoredDocument]:
    """The latest version of every document of the DMP, newest first."""
    rows = conn.execute(
        _DOCUMENT.where(r.ins == ins, d.superseded_by.is_(None)).order_by(*_NEWEST_FIRST)
    )
    return _documents(rows)


def count_documents(conn: Connection, ins: str) -> int:
    """Every stored version of every document of the DMP."""
    return int(
        conn.execute(
            select(func.count()).select_from(dmp_document_table)
            .join(dmp_record_table, r.id == d.record_id).where(r.ins == ins)
        ).scalar_one()
    )  # fmt: skip


@dataclass(frozen=True)
class Search:
    """Which documents to find: every criterion given must match; newest first, by pages."""

    class_codes: tuple[str, ...] = ()
    type_codes: tuple[str, ...] = ()
    author: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    include_superseded: bool = False
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True)
class Visibility:
    """Which documents one professional may see, for the database to filter (so that
    paging happens there): their own, or those of the classes and types allowed
    ("*" in `classes`: every class) and not denied, masked ones only if `masked`."""

    author: str
    classes: frozenset[str]
    types: frozenset[str]
    denied: frozenset[str]
    masked: bool


_DOCUMENT_COLUMNS = [d[f.name] for f in fields(StoredDocument)]
_SEARCH_HEAD = (
    f"SELECT {', '.join('d.' + c.name for c in _DOCUMENT_COLUMNS)} FROM dmp_document d"
    " JOIN dmp_record r ON r.id = d.record_id WHERE r.ins = ?"
)


@lru_cache(maxsize=128)
def _search_statement(sql: str) -> RawStatement:
    """One statement per shape of search (criteria given, lengths of code lists)."""
    return RawStatement(sql, results=_DOCUMENT_COLUMNS)


def _in(column: str, values: Sequence[str], params: list[Any], negate: bool = False) -> str:
    """`column IN (?, ...)`; an empty list matches nothing (NOT IN: everything)."""
    if not values:
        return "1=1" if negate else "1=0"
    params.extend(values)
    return f"{column} {'NOT IN' if negate else 'IN'} ({', '.join('?' for _ in values)})"


def _criteria(query: Search, params: list[Any], when: Any) -> list[str]:
    where: list[str] = []
    if not query.include_superseded:
        where.append("d.superseded_by IS NULL")
    if query.class_codes:
        where.append(_in("d.class_code", query.class_codes, params))
    if query.type_codes:
        where.append(_in("d.type_code", query.type_codes, params))
    if query.author:
        where.append("d.author_national_id = ?")
        params.append(query.author)
    if query.since:
        where.append("d.creation_time >= ?")
        params.append(when(as_utc(query.since)))
    if query.until:
        where.append("d.creation_time < ?")
        params.append(when(as_utc(query.until)))
    return where


def _visible(visibility: Visibility, params: list[Any]) -> str:
    params.append(visibility.author)
    if "*" in visibility.classes:
        rule = "1=1"
    else:
        classes = _in("d.class_code", sorted(visibility.classes), params)
        rule = f"({classes} OR {_in('d.type_code', sorted(visibility.types), params)})"
    if visibility.denied:
        rule = f"{rule} AND {_in('d.type_code', sorted(visibility.denied), params, negate=True)}"
    if not visibility.masked:
        rule = f"{rule} AND NOT d.masked"
    return f"(d.author_national_id = ? OR ({rule}))"


def search_documents(
    conn: Connection, ins: str, query: Search, visibility: Visibility
) -> list[StoredDocument]:
    """In plain SQL (`RawStatement`, results typed by the columns): every professional's
    search runs it. Times are bound as SQLAlchemy binds them, so that they compare with
    the stored ones as before."""
    dialect = conn.dialect
    bind = d.creation_time.type.dialect_impl(dialect).bind_processor(dialect)
    params: list[Any] = [ins]
    where = [*_criteria(query, params, bind or (lambda v: v)), _visible(visibility, params)]
    sql = (f"{_SEARCH_HEAD} AND {' AND '.join(where)}"
           " ORDER BY d.creation_time DESC, d.id DESC LIMIT ? OFFSET ?")  # fmt: skip
    params += [query.limit, query.offset]
    return _documents(_search_statement(sql).all(conn, *params))


@dataclass(frozen=True, slots=True)
class Version:
    """Where a stored document stands in its history."""

    id: int
    set_id: str
    version: int
    author_national_id: str
    superseded_by: int | None


def version_of(conn: Connection, record_id: int, unique_id: str) -> Version | None:
    """The stored document with this unique id in the record."""
    return _version(conn, record_id, d.unique_id == unique_id)


def version_to_replace(conn: Connection, record_id: int, reference: str) -> Version | None:
    """The stored document that a replacement names, by unique id or XDM entryUUID."""
    return _version(conn, record_id, or_(d.unique_id == reference, d.entry_uuid == reference))


def _version(conn: Connection, record_id: int, which: Any) -> Version | None:
    row = conn.execute(
        select(d.id, d.set_id, d.version, d.author_national_id, d.superseded_by).where(
            d.record_id == record_id, which
        )
    ).first()
    return None if row is None else Version(**row._mapping)


class DocumentContent(Protocol):
    """A document to store, as `mss.dmp` describes it."""

    @property
    def unique_id(self) -> str: ...
    @property
    def entry_uuid(self) -> str: ...
    @property
    def content(self) -> bytes: ...
    @property
    def mime_type(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def class_code(self) -> str: ...
    @property
    def type_code(self) -> str: ...
    @property
    def format_code(self) -> str: ...
    @property
    def confidentiality(self) -> Sequence[str]: ...
    @property
    def masked(self) -> bool: ...
    @property
    def invisible_patient(self) -> bool: ...
    @property
    def hidden_from_representatives(self) -> bool: ...
    @property
    def creation_time(self) -> dt.datetime | None: ...
    @property
    def service_start(self) -> dt.datetime | None: ...
    @property
    def service_stop(self) -> dt.datetime | None: ...


class DocumentAuthor(Protocol):
    @property
    def national_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def profession(self) -> str: ...


@dataclass(frozen=True)
class Placement:
    """Where a new version goes: its record, its logical document, its version number."""

    record_id: int
    set_id: str
    version: int


@dataclass(frozen=True)
class Origin:
    """Where a deposit came from: `api`, or `mail` with the mail's Message-ID."""

    source: str = "api"
    message_id: str | None = None


def add_document(
    tx: Tx, blobs: BlobStore, doc: DocumentContent, author: DocumentAuthor,
    at: Placement, origin: Origin,
) -> int:  # fmt: skip
    """Store a document version (its bytes encrypted in a blob); return its id."""
    [blob_id] = blobs.put(tx, [blobs.seal(doc.content)])
    result = tx.conn.execute(
        insert(dmp_document_table).values(
            record_id=at.record_id, unique_id=doc.unique_id, entry_uuid=doc.entry_uuid[:128],
            set_id=at.set_id, version=at.version,
            title=doc.title[:500], class_code=doc.class_code, type_code=doc.type_code,
            format_code=doc.format_code, mime_type=doc.mime_type,
            confidentiality=" ".join(doc.confidentiality), masked=doc.masked,
            invisible_patient=doc.invisible_patient,
            hidden_from_representatives=doc.hidden_from_representatives,
            author_national_id=author.national_id, author_name=author.name[:200],
            author_profession=author.profession, creation_time=as_utc(doc.creation_time),
            service_start=as_utc(doc.service_start), service_stop=as_utc(doc.service_stop),
            size=len(doc.content), sha1=hashlib.sha1(doc.content).hexdigest(),  # noqa: S324
            blob_id=blob_id, source=origin.source, source_message_id=origin.message_id,
        )
    )  # fmt: skip
    return _new_id(result)


def mark_superseded(tx: Tx, document_id: int, by: int) -> None:
    _set_document(tx, document_id, superseded_by=by)


def set_document_masked(tx: Tx, document_id: int, masked: bool) -> None:
    _set_document(tx, document_id, masked=masked)


def make_visible_to_patient(tx: Tx, document_id: int) -> None:
    _set_document(tx, document_id, invisible_patient=False)


def _set_document(tx: Tx, document_id: int, **values: Any) -> None:
    tx.conn.execute(update(dmp_document_table).where(d.id == document_id).values(**values))
