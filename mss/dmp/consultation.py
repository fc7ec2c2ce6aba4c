"""Professionals consulting a DMP (DOMAIN.md §5): the authorisation they declare, the
search, the reading of a document, revealing one to the patient, and the history.

Every consultation is checked by `access.py` and traced, refusals included: a
refused access's trace commits although the operation fails (`consult`). The
first consultation by a professional is told to the patient.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from mss.dmp import traces
from mss.dmp.access import (
    Actor,
    Habilitations,
    Mode,
    Professional,
    RecordState,
    check_consult,
    check_open,
    check_read_traces,
    check_reveal_to_patient,
    professional_sees,
)
from mss.dmp.errors import DMPAccessForbidden, DMPError
from mss.dmp.patient_view import hidden_ids, patient_adult, traces_for_patient
from mss.dmp.records import (
    Settings,
    document_dict,
    document_state,
    notify,
    record_state,
    require_record,
    stored_document,
)
from mss.store import dmp as stored
from mss.store.api import Store
from mss.store.dmp import Search, StoredDocument, Visibility
from mss.store.models import utcnow
from mss.store.ports import BlobStore
from mss.store.sql import Conn, Tx

T = TypeVar("T")


@dataclass(frozen=True)
class _Refused:
    error: DMPError


async def consult(store: Store, fn: Callable[[Tx], T]) -> T:
    """Run a consultation in the group commit. A refusal that was traced commits (the
    trace of a refused access must stay) and is raised after the commit; any other
    error rolls the transaction back."""

    def run(tx: Tx) -> T | _Refused:
        try:
            return fn(tx)
        except DMPError as exc:
            if exc.traced:
                return _Refused(exc)
            raise

    result = await store.write(run)
    if isinstance(result, _Refused):
        raise result.error
    return result


def authorize(
    tx: Tx, settings: Settings, ins: str, professional: Professional, basis: str = "explicit"
) -> dt.datetime:
    """Declare the patient's consent (presumed for the care team, explicit otherwise):
    an authorisation valid `authorization_days`. A blocked professional gets none."""
    if basis not in ("presumed", "explicit"):
        raise DMPError(
            "l'autorisation est presumed ou explicit"
            " (the basis of an authorisation is 'presumed' or 'explicit')"
        )
    check_open(record_state(tx.conn, ins), professional)
    record_id = stored.ensure_record(tx, ins)
    expires = utcnow() + dt.timedelta(days=settings.authorization_days)
    stored.grant_authorization(tx, record_id, professional.national_id, basis, expires)
    traces.append(tx, ins, Actor.PROFESSIONAL.value, professional.national_id, "authorize",
                  detail={"basis": basis, "expires_at": expires.isoformat()})  # fmt: skip
    return expires


def _admit(tx: Tx, ins: str, professional: Professional, mode: Mode) -> RecordState:
    """The record, if this professional may consult it in `mode`; a refusal is traced."""
    state = record_state(tx.conn, ins)
    expires = None
    if state is not None:
        expires = stored.authorization_expiry(tx.conn, ins, professional.national_id)
    try:
        return check_consult(state, professional, mode, expires, utcnow())
    except DMPError as exc:
        if state is not None:  # refused accesses are traced too
            _refused(tx, ins, professional, mode, exc)
        raise


def _refused(
    tx: Tx, ins: str, professional: Professional, mode: Mode, exc: DMPError,
    document_id: int | None = None,
) -> None:  # fmt: skip
    traces.append(tx, ins, Actor.PROFESSIONAL.value, professional.national_id, "refused",
                  mode=mode.value, document_id=document_id,
                  detail={"error": exc.name})  # fmt: skip
    exc.traced = True


def _consulted(
    tx: Tx, ins: str, professional: Professional, mode: Mode, *,
    document_id: int | None = None, detail: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """Trace a consultation; tell the patient the first one by this professional."""
    if not traces.has_trace(tx.conn, ins, professional.national_id, "consult"):
        notify(tx, "first_access", ins, {"national_id": professional.national_id,
                                         "name": professional.name})  # fmt: skip
    traces.append(tx, ins, Actor.PROFESSIONAL.value, professional.national_id, "consult",
                  mode=mode.value, document_id=document_id, detail=detail)  # fmt: skip


def search_documents(
    tx: Tx, settings: Settings, ins: str, professional: Professional, mode: Mode, query: Search
) -> list[dict[str, Any]]:
    """The documents this professional may see, newest first; traced."""
    state = _admit(tx, ins, professional, mode)
    visibility = _visibility(professional, state, settings.habilitations)
    found = stored.search_documents(tx.conn, ins, query, visibility)
    _consulted(tx, ins, professional, mode, detail={"search": True, "found": len(found)})
    return [document_dict(doc) for doc in found]


def _visibility(
    professional: Professional, state: RecordState, matrix: Habilitations
) -> Visibility:
    """`access.professional_sees` for the database to apply (paging happens there):
    the author's own documents, or those the matrix allows and, when masked, only
    to a médecin traitant DMP."""
    classes, types, denied = matrix.rules(professional.profession)
    return Visibility(
        author=professional.national_id, classes=classes, types=types, denied=denied,
        masked=professional.national_id in state.treating,
    )  # fmt: skip


NOT_FOR_THEM = "ce document n'est pas accessible à ce professionnel"


def _sees(
    settings: Settings, professional: Professional, state: RecordState, doc: StoredDocument
) -> bool:
    return professional_sees(document_state(doc), state, professional, settings.habilitations)


def read_document(
    tx: Tx, settings: Settings, blobs: BlobStore, ins: str, professional: Professional,
    mode: Mode, document_id: int,
) -> tuple[dict[str, Any], bytes]:  # fmt: skip
    """One document and its bytes, for a professional allowed to see it; traced."""
    state = _admit(tx, ins, professional, mode)
    doc = stored_document(tx.conn, ins, document_id)
    if not _sees(settings, professional, state, doc):
        refused = DMPAccessForbidden(NOT_FOR_THEM)
        _refused(tx, ins, professional, mode, refused, document_id)
        raise refused
    _consulted(tx, ins, professional, mode, document_id=document_id)
    return document_dict(doc), blobs.get(tx.conn, doc.blob_id)


def reveal_to_patient(
    tx: Tx, settings: Settings, ins: str, professional: Professional, mode: Mode, document_id: int
) -> None:
    """An authorised professional makes an invisible document visible to the patient
    (for good: it can never become invisible again)."""
    state = _admit(tx, ins, professional, mode)
    doc = stored_document(tx.conn, ins, document_id)
    if not _sees(settings, professional, state, doc):
        raise DMPAccessForbidden(NOT_FOR_THEM)
    check_reveal_to_patient(document_state(doc))
    stored.make_visible_to_patient(tx, document_id)
    traces.append(tx, ins, Actor.PROFESSIONAL.value, professional.national_id, "reveal",
                  document_id=document_id)  # fmt: skip
    notify(tx, "new_document", ins, {"document_id": document_id, "title": doc.title})


def read_traces(
    conn: Conn, ins: str, actor: Actor, actor_id: str, limit: int = 500,
    today: dt.date | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """The history of a DMP, for the patient (without what they may not see:
    `patient_view`) and their médecins traitants DMP (all of it)."""
    state = require_record(conn, ins)
    check_read_traces(actor, actor_id, state)
    found = traces.history(conn, ins, limit)
    if actor is not Actor.PATIENT:
        return found
    return traces_for_patient(found, hidden_ids(conn, ins, patient_adult(conn, ins, today)))
