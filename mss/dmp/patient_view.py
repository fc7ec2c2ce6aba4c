"""What the patient sees of their DMP (DOMAIN.md §5, "Invisibility to the patient"): a
document invisible to them (`INVISIBLE_PATIENT`; for a minor's space, also one hidden
from the legal representatives) is absent everywhere they look, and answers exactly as
an id that does not exist.

- their documents: of each document, its newest version they see (a version invisible
  to them does not make the one they saw vanish, and is never named as its successor);
- one document they act on (mask, unmask): `DMPDocumentNotFound` when they may not see
  it, the very refusal of a missing id;
- the traces: who accessed their record, never what they may not see (a
  consultation of a hidden document reads as one of the record; its deposit is left
  out), and no count of what professionals found (it would count those).

The patient's API (`web/dmp.py`, `/api/dmp/me/…`) and the patient space read through
these (`choices.py`, `consultation.py`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from mss.dmp.access import is_adult, patient_sees
from mss.dmp.errors import DMPDocumentNotFound
from mss.dmp.records import document_dict, document_state
from mss.store import dmp as stored
from mss.store.dmp import Search, StoredDocument, Visibility
from mss.store.sql import Conn

_EVERY = Visibility(author="", classes=frozenset({"*"}), types=frozenset(),
                    denied=frozenset(), masked=True)  # fmt: skip


def patient_adult(conn: Conn, ins: str, today: dt.date | None = None) -> bool:
    """Whether the patient is of age on `today` (an unknown birth date: an adult)."""
    birth = stored.patient_birth_date(conn, ins)
    return birth is None or is_adult(birth, today or dt.date.today())


def every_version(conn: Conn, ins: str) -> list[StoredDocument]:
    """Every stored version of every document of the patient's DMP, newest first."""
    everything = Search(include_superseded=True, limit=1_000_000)
    return stored.search_documents(conn, ins, everything, _EVERY)


def hidden_ids(conn: Conn, ins: str, adult: bool) -> set[int]:
    """The ids of the versions the patient may not see."""
    return {d.id for d in every_version(conn, ins) if not patient_sees(document_state(d), adult)}


def seen_document(conn: Conn, ins: str, document_id: int, adult: bool) -> StoredDocument:
    """A document of the patient's DMP they may see, else the refusal of a missing id."""
    found = stored.document(conn, ins, document_id)
    if found is None or not patient_sees(document_state(found), adult):
        raise DMPDocumentNotFound()
    return found


def seen_documents(conn: Conn, ins: str, adult: bool) -> list[dict[str, Any]]:
    """Of each document, the newest version the patient sees, newest first; its
    successor named only when they see it."""
    versions = every_version(conn, ins)
    seen = {d.id for d in versions if patient_sees(document_state(d), adult)}
    newest: dict[str, StoredDocument] = {}
    for doc in sorted(versions, key=lambda d: -d.version):
        if doc.id in seen:
            newest.setdefault(doc.set_id, doc)
    shown = [document_dict(doc) for doc in versions if newest.get(doc.set_id) is doc]
    for entry in shown:
        if entry["superseded_by"] not in seen:
            entry["superseded_by"] = None
    return shown


def traces_for_patient(found: list[dict[str, Any]], hidden: set[int]) -> list[dict[str, Any]]:
    """The traces the patient may read. Who accessed their record stays told, never
    what they may not see: a professional's consultation of (or refused access to) a
    hidden document reads as one of the record, with neither the document nor what a
    search found (it would count the hidden ones); any other trace about a hidden
    document (its deposit, its unmasking) is left out."""
    shown = []
    for trace in found:
        if trace["actor_kind"] == "patient":
            if trace["document_id"] not in hidden:
                shown.append(trace)
            continue
        if trace["document_id"] in hidden:
            if trace["action"] not in _ACCESSES:
                continue
            trace = {**trace, "document_id": None}
        if trace["action"] == "consult" and trace["document_id"] is None:
            trace = {**trace, "detail": None}
        shown.append(trace)
    return shown


_ACCESSES = ("consult", "refused")  # a professional's access to the record: always told
