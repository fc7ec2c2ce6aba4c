"""Depositing documents into a DMP (DOMAIN.md §5): by professional software through the
API, or from a mail to the patient (`delivery/deposits.py`).

All the documents of a deposit are stored or none; a unique id already in the DMP
is not stored again (a mail processed twice deposits once); a document that
replaces another becomes its next version, and only the author may replace.
Each document stored is traced, and told to the patient unless invisible to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from mss.dmp import traces
from mss.dmp.access import Actor, Professional, check_feed
from mss.dmp.errors import DocumentError
from mss.dmp.records import NewDocument, media_type, notify, record_state
from mss.store import dmp as stored
from mss.store.dmp import Origin, Placement, Version
from mss.store.ports import BlobStore
from mss.store.sql import Conn, Tx


@dataclass(frozen=True)
class Deposited:
    document_id: int
    unique_id: str
    version: int
    duplicate: bool = False  # the same unique id was already there: nothing written


@dataclass(frozen=True)
class _Deposit:
    """What the documents of one deposit share."""

    ins: str
    record_id: int
    author: Professional
    origin: Origin
    blobs: BlobStore
    actor: Actor = Actor.PROFESSIONAL


def deposit(
    tx: Tx,
    blobs: BlobStore,
    ins: str,
    author: Professional,
    documents: Sequence[NewDocument],
    *,
    source: str = "api",
    source_message_id: str | None = None,
) -> list[Deposited]:
    """Deposit documents into a DMP (all or none). Depositing a unique id already there
    changes nothing (a mail processed twice deposits once)."""
    state = check_feed(record_state(tx.conn, ins), author)
    record_id = stored.ensure_record(tx, state.ins)
    call = _Deposit(ins, record_id, author, Origin(source, source_message_id), blobs)
    return [_deposit_one(tx, call, doc) for doc in documents]


def deposit_by_patient(
    tx: Tx, blobs: BlobStore, ins: str, patient: Professional, documents: Sequence[NewDocument]
) -> list[Deposited]:
    """The patient adds their own documents (DOCPAT types, class 90) from their space:
    the same path as a professional's deposit (an open DMP, a qualified INS, versions,
    traces), traced as the patient's (`patient.national_id`: who acted, the INS or a
    legal representative's login) and not told to the patient, who did it."""
    state = check_feed(record_state(tx.conn, ins), patient)
    record_id = stored.ensure_record(tx, state.ins)
    call = _Deposit(ins, record_id, patient, Origin("space"), blobs, Actor.PATIENT)
    return [_deposit_one(tx, call, doc) for doc in documents]


def _deposit_one(tx: Tx, call: _Deposit, doc: NewDocument) -> Deposited:
    doc = replace(doc, mime_type=media_type(doc.mime_type))  # sent back as a Content-Type
    existing = stored.version_of(tx.conn, call.record_id, doc.unique_id)
    if existing is not None:
        return Deposited(existing.id, doc.unique_id, existing.version, True)
    previous = _replaced(tx.conn, call, doc)
    at = Placement(call.record_id, doc.unique_id, 1)
    if previous is not None:
        at = Placement(call.record_id, previous.set_id, previous.version + 1)
    document_id = stored.add_document(tx, call.blobs, doc, call.author, at, call.origin)
    if previous is not None:
        stored.mark_superseded(tx, previous.id, by=document_id)
    _deposited(tx, call, doc, document_id, at.version)
    return Deposited(document_id, doc.unique_id, at.version)


def _replaced(conn: Conn, call: _Deposit, doc: NewDocument) -> Version | None:
    """The version this document replaces (None: a new document); only its author may
    replace it, and only once."""
    if not doc.replaces:
        return None
    previous = stored.version_to_replace(conn, call.record_id, doc.replaces)
    if previous is None:
        raise DocumentError(f"the document {doc.replaces} to replace is not in the DMP")
    if previous.author_national_id != call.author.national_id:
        raise DocumentError("only the author of a document may replace it", 901)
    if previous.superseded_by is not None:
        raise DocumentError(f"{doc.replaces} was already replaced by a newer version")
    return previous


def _deposited(tx: Tx, call: _Deposit, doc: NewDocument, document_id: int, version: int) -> None:
    """Trace the deposit; tell the patient, unless the document is invisible to them."""
    traces.append(
        tx, call.ins, call.actor.value, call.author.national_id, "deposit",
        document_id=document_id,
        detail={"unique_id": doc.unique_id, "version": version, "source": call.origin.source},
    )  # fmt: skip
    if call.actor is Actor.PROFESSIONAL and not doc.invisible_patient:
        notify(tx, "new_document", call.ins, {"document_id": document_id, "title": doc.title})
