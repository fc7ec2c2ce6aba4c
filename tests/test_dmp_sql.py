"""The DMP's plain SQL (`store/dmp.py`, `store/dmp_traces.py`), on SQLite and PostgreSQL.

The search, against the rules it stands for: every criterion (class, type, author,
dates, superseded versions), every part of a professional's visibility (their own
documents, the classes and types allowed, the types denied, masked documents), newest
first, by pages. The trace's INSERT, against SQLAlchemy's.

The expected answer is computed here in Python from every stored row, so that a
criterion the SQL dropped or bound wrong (a date compared as text in another format,
say) shows as a difference.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import fields
from typing import Any

from sqlalchemy import insert, select

from mss.core.identity import build_patient
from mss.dmp import service
from mss.dmp.access import Professional
from mss.dmp.records import MASKED
from mss.dmp.service import NewDocument, Search
from mss.store import dmp as stored
from mss.store import dmp_traces as stored_traces
from mss.store.accounts import add_patients
from mss.store.api import Store
from mss.store.dmp import StoredDocument, Visibility
from mss.store.models import dmp_document_table, dmp_record_table, dmp_trace_table

INS = "279035121518989"
OTHER_INS = "188102B17295165"
AUTHORS = [
    Professional("810003456789", "10", "Dr Jean DUPONT"),
    Professional("810001122334", "10", "Dr François DOE-MARTIN"),
    Professional("0131234567", "60", "Hélène LÉVÊQUE"),
]
CLASSES = ["10", "11", "31"]
TYPES = ["11488-4", "34133-9", "60591-5"]
START = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)


def _when(n: int) -> dt.datetime:
    """Whole seconds for some documents, microseconds for others: both storage forms."""
    return START + dt.timedelta(hours=n, microseconds=0 if n % 2 else 250_000 + n)


def _doc(n: int, **extra: Any) -> NewDocument:
    return NewDocument(
        unique_id=f"1.2.250.1.999.2.{n}", content=f"document {n}".encode(), mime_type="text/xml",
        title=f"Document {n}", class_code=CLASSES[n % 3], type_code=TYPES[(n // 3) % 3],
        creation_time=_when(n), confidentiality=(MASKED,) if n % 5 == 0 else ("N",), **extra,
    )  # fmt: skip


async def _filled(store: Store) -> list[StoredDocument]:
    patients = [
        build_patient({"ins": ins, "family": "RECHERCHE", "given": "ESSAI",
                       "birth_date": "1979-03-17", "sex": "F"})
        for ins in (INS, OTHER_INS)
    ]  # fmt: skip
    await store.write(lambda tx: add_patients(tx, patients, "patient.mssante.fr"))
    for n in range(18):
        author = AUTHORS[n % len(AUTHORS)]
        await store.write(
            lambda tx, n=n, a=author: service.deposit(tx, store.blobs, INS, a, [_doc(n)])
        )
    # two replaced versions (superseded), and a document of another patient
    for n in (3, 8):
        new = _doc(100 + n, replaces=f"1.2.250.1.999.2.{n}")
        author = AUTHORS[n % len(AUTHORS)]
        await store.write(lambda tx, d=new, a=author: service.deposit(tx, store.blobs, INS, a, [d]))
    await store.write(
        lambda tx: service.deposit(tx, store.blobs, OTHER_INS, AUTHORS[0], [_doc(50)])
    )
    columns = [dmp_document_table.c[f.name] for f in fields(StoredDocument)]

    def every(conn: Any) -> list[StoredDocument]:
        rows = conn.execute(
            select(*columns).where(dmp_document_table.c.record_id.in_(
                select(dmp_record_table.c.id).where(dmp_record_table.c.ins == INS)
            ))
        )  # fmt: skip
        return [StoredDocument(*row) for row in rows]

    return await store.read(every)


def _expected(docs: list[StoredDocument], query: Search, seen: Visibility) -> list[int]:
    def matches(doc: StoredDocument) -> bool:
        assert doc.creation_time is not None
        return all([
            query.include_superseded or doc.superseded_by is None,
            not query.class_codes or doc.class_code in query.class_codes,
            not query.type_codes or doc.type_code in query.type_codes,
            not query.author or doc.author_national_id == query.author,
            not query.since or doc.creation_time >= query.since,
            not query.until or doc.creation_time < query.until,
        ])  # fmt: skip

    def visible(doc: StoredDocument) -> bool:
        allowed = (
            "*" in seen.classes or doc.class_code in seen.classes or doc.type_code in seen.types
        )
        allowed = allowed and doc.type_code not in seen.denied and (seen.masked or not doc.masked)
        return doc.author_national_id == seen.author or allowed

    found = sorted((d for d in docs if matches(d) and visible(d)),
                   key=lambda d: (d.creation_time, d.id), reverse=True)  # fmt: skip
    return [d.id for d in found[query.offset : query.offset + query.limit]]


QUERIES = [
    Search(),
    Search(include_superseded=True),
    Search(class_codes=("10",)),
    Search(class_codes=("10", "31"), type_codes=("34133-9",)),
    Search(type_codes=("60591-5", "11488-4")),
    Search(author=AUTHORS[1].national_id),
    Search(since=_when(4)),  # a bound equal to a stored time: included
    Search(until=_when(9)),  # ... and excluded
    Search(since=_when(3), until=_when(12), include_superseded=True),
    Search(since=_when(2).astimezone(dt.timezone(dt.timedelta(hours=2)))),  # another offset
    Search(limit=4),
    Search(limit=4, offset=4),
    Search(limit=5, offset=100),
]
VISIBILITIES = [
    Visibility(author="nobody", classes=frozenset({"*"}), types=frozenset(),
               denied=frozenset(), masked=True),
    Visibility(author="nobody", classes=frozenset({"*"}), types=frozenset(),
               denied=frozenset({"34133-9"}), masked=False),
    Visibility(author=AUTHORS[2].national_id, classes=frozenset({"11"}),
               types=frozenset({"60591-5"}), denied=frozenset(), masked=False),
    Visibility(author=AUTHORS[0].national_id, classes=frozenset(), types=frozenset(),
               denied=frozenset({"11488-4", "60591-5"}), masked=True),
]  # fmt: skip


async def test_dmp_search_finds_what_the_criteria_and_the_visibility_allow(store: Store) -> None:
    docs = await _filled(store)
    assert any(d.superseded_by is not None for d in docs) and any(d.masked for d in docs)
    for query, seen in itertools.product(QUERIES, VISIBILITIES):
        found = await store.read(lambda c, q=query, s=seen: stored.search_documents(c, INS, q, s))
        assert [d.id for d in found] == _expected(docs, query, seen), (query, seen)
        assert all(isinstance(d.masked, bool) and d.deposited_at.tzinfo for d in found)


async def test_dmp_search_returns_the_stored_documents_whole(store: Store) -> None:
    docs = {d.id: d for d in await _filled(store)}
    everything = Search(include_superseded=True, limit=1000)
    seen = VISIBILITIES[0]
    found = await store.read(lambda c: stored.search_documents(c, INS, everything, seen))
    assert len(found) == len(docs)
    for doc in found:
        assert doc == docs[doc.id]


async def test_dmp_trace_is_stored_as_sqlalchemy_stores_it(store: Store) -> None:
    """The trace's plain INSERT binds its time as SQLAlchemy's INSERT did: the same stored
    value (on SQLite, the same text), read back equal, so the chain still verifies."""
    at = dt.datetime(2026, 12, 7, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    row = {"ins": INS, "actor_kind": "professional", "actor": "810003456789",
           "action": "consult", "mode": "normal", "document_id": None, "detail": "",
           "prev_hash": "0" * 64}  # fmt: skip

    def both(tx: Any) -> None:
        for hash_, when in (("a" * 64, at), ("b" * 64, at.replace(microsecond=123456))):
            stored_traces.add_trace(tx, {**row, "at": when, "hash": hash_})
            tx.conn.execute(insert(dmp_trace_table).values(**row, at=when, hash=hash_.upper()))

    await store.write(both)

    def stored_values(conn: Any) -> list[tuple[str, Any]]:
        raw = conn.exec_driver_sql("SELECT hash, at FROM dmp_trace ORDER BY id")
        return [(h, a) for h, a in raw]

    values = await store.read(stored_values)
    assert len(values) == 4
    for ours, theirs in (values[0:2], values[2:4]):
        assert ours[0].upper() == theirs[0] and ours[1] == theirs[1]
    read_back = await store.read(lambda c: stored_traces.traces_of(c, INS, 10))
    assert {t["at"] for t in read_back} == {at, at.replace(microsecond=123456)}
