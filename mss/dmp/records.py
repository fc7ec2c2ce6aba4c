"""What the DMP's operations share: their settings, a document to deposit, a record's
state as the rules see it (`access.py`), a stored document as the API shows it, and
the events told to the patient.

Pure but for the store functions it names; the operations themselves are in
`deposit.py`, `consultation.py` and `choices.py` (all reachable from `service.py`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from mss.dmp.access import DocumentState, Habilitations, RecordState
from mss.dmp.errors import DMPDocumentNotFound, DMPPatientNotFound
from mss.store import dmp as stored
from mss.store.dmp import StoredDocument
from mss.store.models import ProfileStatus
from mss.store.notifications import add_notification
from mss.store.sql import Conn, Tx

TREATING, BLOCKED = "treating", "blocked"  # the roles of a professional in a DMP
MASKED, INVISIBLE, HIDDEN_REPR = "MASQUE_PS", "INVISIBLE_PATIENT", "INVISIBLE_REPRESENTANTS_LEGAUX"


# RFC 6838 §4.2 names, RFC 9110 §8.3.1 parameters (a token, or a quoted printable ASCII)
_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_WORD = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
_PARAMETER = rf"[ \t]*;[ \t]*{_WORD}=(?:{_WORD}|\"[ !#-\[\]-~]*\")"
_MEDIA_TYPE = re.compile(rf"(?P<type>{_NAME}/{_NAME})(?P<parameters>(?:{_PARAMETER})*)")
OCTET_STREAM = "application/octet-stream"


def media_type(declared: str | None) -> str:
    """The media type a depositor declared, as a header may carry it: `type/subtype`
    (lower case) with its parameters if they are well formed, the bare `type/subtype`
    if only they are not, else `application/octet-stream` (a line break, a non-ASCII
    character or no `/` is never sent back as a Content-Type)."""
    text = (declared or "").strip()
    found = _MEDIA_TYPE.fullmatch(text)
    if found is not None:
        return found["type"].lower() + found["parameters"]
    bare = _MEDIA_TYPE.fullmatch(text.split(";", 1)[0].strip())
    return bare["type"].lower() if bare is not None else OCTET_STREAM


@dataclass(frozen=True)
class Settings:
    authorization_days: int = 365  # the lifetime of an authorisation (not published: ours)
    habilitations: Habilitations = field(default_factory=Habilitations.load)


@dataclass(frozen=True)
class NewDocument:
    """A document to deposit, with its metadata (from an XDM, a CDA header or a PDF)."""

    unique_id: str
    content: bytes
    mime_type: str
    title: str = ""
    class_code: str = ""
    type_code: str = ""
    format_code: str = ""
    confidentiality: tuple[str, ...] = ("N",)
    creation_time: dt.datetime | None = None
    service_start: dt.datetime | None = None
    service_stop: dt.datetime | None = None
    replaces: str | None = None  # unique id (or XDM entryUUID) of the version it replaces
    entry_uuid: str = ""  # the XDM ExtrinsicObject id

    @property
    def masked(self) -> bool:
        return MASKED in self.confidentiality

    @property
    def invisible_patient(self) -> bool:
        return INVISIBLE in self.confidentiality

    @property
    def hidden_from_representatives(self) -> bool:
        return HIDDEN_REPR in self.confidentiality


# --- the record ------------------------------------------------------------------------------


def record_state(conn: Conn, ins: str) -> RecordState | None:
    """The DMP of a patient known here (None: unknown patient). A patient whose profile
    is closed has a closed DMP (seed 004: no feeding)."""
    facts = stored.record_facts(conn, ins)
    if facts is None:
        return None
    return RecordState(
        ins=ins,
        closed=facts.closed or facts.profile_status == ProfileStatus.CLOSED.value,
        oppose_bris_de_glace=facts.oppose_bris_de_glace,
        oppose_centre15=facts.oppose_centre15,
        blocked=frozenset(n for role, n in facts.people if role == BLOCKED),
        treating=frozenset(n for role, n in facts.people if role == TREATING),
        qualified=facts.identity_status == "QUAL",
    )


def require_record(conn: Conn, ins: str) -> RecordState:
    state = record_state(conn, ins)
    if state is None:
        raise DMPPatientNotFound("ce patient n'a pas de DMP (patient inconnu)")
    return state


def count_documents(conn: Conn, ins: str) -> int:
    return stored.count_documents(conn, ins)


# --- stored documents --------------------------------------------------------------------------


def stored_document(conn: Conn, ins: str, document_id: int) -> StoredDocument:
    found = stored.document(conn, ins, document_id)
    if found is None:
        raise DMPDocumentNotFound()
    return found


def document_state(doc: StoredDocument) -> DocumentState:
    """What the rules need to know of a stored document."""
    return DocumentState(
        class_code=doc.class_code,
        type_code=doc.type_code,
        author_national_id=doc.author_national_id,
        masked=bool(doc.masked),
        invisible_patient=bool(doc.invisible_patient),
        hidden_from_representatives=bool(doc.hidden_from_representatives),
    )


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value is not None else None


def document_dict(doc: StoredDocument) -> dict[str, Any]:
    """A stored document's metadata as the API and the patient see it (JSON)."""
    return {
        "id": doc.id, "unique_id": doc.unique_id, "set_id": doc.set_id, "version": doc.version,
        "superseded_by": doc.superseded_by, "title": doc.title, "class_code": doc.class_code,
        "type_code": doc.type_code, "format_code": doc.format_code, "mime_type": doc.mime_type,
        "confidentiality": doc.confidentiality.split(), "masked": bool(doc.masked),
        "invisible_patient": bool(doc.invisible_patient),
        "hidden_from_representatives": bool(doc.hidden_from_representatives),
        "author": {"national_id": doc.author_national_id, "name": doc.author_name,
                   "profession": doc.author_profession},
        "creation_time": _iso(doc.creation_time), "service_start": _iso(doc.service_start),
        "service_stop": _iso(doc.service_stop), "deposited_at": _iso(doc.deposited_at),
        "size": doc.size, "sha1": doc.sha1,
    }  # fmt: skip


# --- events for the patient --------------------------------------------------------------------


def notify(tx: Tx, kind: str, ins: str, payload: dict[str, Any]) -> None:
    """Tell the patient, after the commit (`first_access`, `new_document`)."""
    add_notification(tx, kind, ins, payload)
