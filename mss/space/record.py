"""The patient's documents in their space (DOMAIN.md §5): the DMP documents the viewer
may see, by category, newest first; their download; masking from professionals; and
the patient's own documents (DOCPAT types) added from the space.

No HTTP here: each function takes the `SpaceDeps` and the `Viewer` and asks the DMP's
service (`mss.dmp.service`) and rules (`mss.dmp.access`). What the viewer may not see
answers exactly as an id that does not exist (`NotFound`): a document invisible to the
patient, one hidden from legal representatives when a representative is looking, and
any other patient's document, so that ids cannot be probed.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Any

from mss.core.digits import ascii_digits
from mss.dmp import service, traces
from mss.dmp.access import Actor, Professional, patient_sees
from mss.dmp.errors import DMPError
from mss.dmp.patient_view import patient_adult
from mss.dmp.records import document_dict, document_state, media_type
from mss.space.dates import day
from mss.space.deps import SpaceDeps, Viewer
from mss.space.errors import NotFound, SpaceError
from mss.space.mail_content import UPLOADABLE, sniff
from mss.store import dmp as stored
from mss.store.dmp import StoredDocument
from mss.store.sql import Conn, Tx

# JDV_J57 classCode (DOMAIN.md §5) → what the patient reads
CATEGORIES = {
    "10": "Comptes rendus", "11": "Synthèses", "31": "Imagerie médicale",
    "42": "Prescriptions", "43": "Dispensations", "44": "Plans de soins",
    "45": "Traitements administrés", "52": "Certificats", "60": "Remboursements",
    "90": "Mes documents", "95": "Gestion",
}  # fmt: skip
OTHER = "Autres documents"
PATIENT_CLASS = "90"  # Documents du patient
# The patient's own document types (ANS `DOCPAT01`..`DOCPAT09`); the labels are ours.
PATIENT_TYPES = {
    "DOCPAT01": "Synthèse", "DOCPAT02": "Traitements et soins", "DOCPAT03": "Comptes rendus",
    "DOCPAT04": "Imagerie médicale", "DOCPAT05": "Biologie", "DOCPAT06": "Prévention",
    "DOCPAT07": "Certificats", "DOCPAT08": "Directives anticipées", "DOCPAT09": "Autre",
}  # fmt: skip
PATIENT_FORMAT = "urn:ihe:iti:xds:2017:mimeTypeSufficient"  # IHE: the MIME type suffices
MAX_TITLE = 200


@dataclass(frozen=True)
class Category:
    code: str
    label: str
    documents: list[dict[str, Any]]


@dataclass(frozen=True)
class Download:
    content: bytes
    media_type: str
    filename: str


def refusal(exc: DMPError) -> SpaceError:
    """A refusal of the DMP, shown in the space (its text is French; the English says
    which rule, by the DMP error's name)."""
    text = exc.text[:1].upper() + exc.text[1:]
    return SpaceError(f"{text}.", f"Refused by the DMP's rules ({exc.name}).", status=409)


MAX_ID = 2**63 - 1  # a BIGINT: a larger id names nothing (and would overflow the driver)


def id_of(text: str) -> int:
    """An id from a URL's path: digits within a BIGINT, else `NotFound` (never a 500)."""
    if not ascii_digits(text) or len(text) > 19 or int(text) > MAX_ID:
        raise NotFound()
    return int(text)


def actor_of(viewer: Viewer) -> str:
    """Who acted, in the traces: the patient (their INS) or the representative's login."""
    return viewer.account if viewer.representative else viewer.ins


# --- what the viewer sees ------------------------------------------------------------------------


def adult_on(conn: Conn, ins: str, today: dt.date) -> bool:
    """Whether the patient is of age on `today` (unknown birth date: an adult)."""
    return patient_adult(conn, ins, today)


def today_of(deps: SpaceDeps) -> dt.date:
    return dt.datetime.fromtimestamp(deps.now(), dt.UTC).date()


def shown(doc: dict[str, Any], viewer: Viewer) -> bool:
    """Beyond `patient_documents`: a legal representative never sees a document hidden
    from representatives, whatever the patient's age (DOMAIN.md §5, minors)."""
    return not (viewer.representative and doc["hidden_from_representatives"])


def sees(doc: StoredDocument, viewer: Viewer, adult: bool) -> bool:
    """Whether the viewer may see this stored document (`patient_sees`, and `shown`)."""
    return patient_sees(document_state(doc), adult) and shown(document_dict(doc), viewer)


def visible_document(
    conn: Conn, viewer: Viewer, document_id: int, today: dt.date
) -> StoredDocument:
    """The viewer's document `document_id` (the current or an older version), else
    `NotFound` — the same answer for someone else's, an invisible or a missing id."""
    doc = stored.document(conn, viewer.ins, document_id)
    if doc is None or not sees(doc, viewer, adult_on(conn, viewer.ins, today)):
        raise NotFound()
    return doc


# --- documents -----------------------------------------------------------------------------------


async def documents(deps: SpaceDeps, viewer: Viewer) -> list[Category]:
    """The documents the viewer may see, by category (in the order of `CATEGORIES`),
    newest first in each; the consultation is traced."""
    today = today_of(deps)
    try:
        found = await deps.store.write(
            lambda tx: service.patient_documents(tx, viewer.ins, today, actor_of(viewer))
        )
    except DMPError:
        found = []
    return by_category([d for d in found if shown(d, viewer)])


def by_category(found: list[dict[str, Any]]) -> list[Category]:
    """The documents under their category's label; each with its day in French."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for doc in found:
        at = doc["creation_time"] or doc["deposited_at"]
        doc["day"] = day(dt.datetime.fromisoformat(at)) if at else ""
        groups.setdefault(doc["class_code"] if doc["class_code"] in CATEGORIES else "", []).append(
            doc
        )
    order = [*CATEGORIES, ""]
    return [
        Category(code, CATEGORIES.get(code, OTHER), groups[code])
        for code in order
        if code in groups
    ]


async def download(deps: SpaceDeps, viewer: Viewer, document_id: int) -> Download:
    """A document's bytes, for the viewer who may see it; traced as a consultation."""
    today = today_of(deps)

    def read(tx: Tx) -> Download:
        doc = visible_document(tx.conn, viewer, document_id, today)
        content = deps.store.blobs.get(tx.conn, doc.blob_id)
        traces.append(tx, viewer.ins, Actor.PATIENT.value, actor_of(viewer), "consult",
                      document_id=doc.id)  # fmt: skip
        return Download(content, media_type(doc.mime_type), filename_of(doc))

    return await deps.store.write(read)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
EXTENSIONS = {"application/pdf": ".pdf", "image/jpeg": ".jpg", "image/png": ".png",
              "text/plain": ".txt", "text/xml": ".xml", "application/xml": ".xml"}  # fmt: skip


def filename_of(doc: StoredDocument) -> str:
    """An ASCII file name for Content-Disposition (the title, cleaned, and an extension)."""
    base = _UNSAFE.sub("-", doc.title or f"document-{doc.id}").strip("-.")[:80] or "document"
    return base + EXTENSIONS.get(doc.mime_type, "")


async def set_masked(deps: SpaceDeps, viewer: Viewer, document_id: int, masked: bool) -> None:
    """Mask the document from professionals (but its author and the médecins traitants
    DMP), or unmask it (DOMAIN.md §5)."""
    today = today_of(deps)

    def change(tx: Tx) -> None:
        visible_document(tx.conn, viewer, document_id, today)
        service.set_masked(tx, viewer.ins, Actor.PATIENT, actor_of(viewer), document_id, masked)

    try:
        await deps.store.write(change)
    except DMPError as exc:
        raise refusal(exc) from None


# --- the patient's own documents ------------------------------------------------------------------


def refused(french: str, english: str) -> SpaceError:
    return SpaceError(french, english, status=400)


def own_document(
    deps: SpaceDeps, content: bytes, title: str, type_code: str
) -> service.NewDocument:
    """A document the patient adds, checked: its size, its type (sniffed), a title, a
    DOCPAT type."""
    if not content:
        raise refused("Le fichier est vide.", "The file is empty.")
    if len(content) > deps.attachment_max:
        mb = deps.attachment_max // (1024 * 1024)
        raise refused(f"Le fichier dépasse {mb} Mo.", f"The file is larger than {mb} MB.")
    media_type = sniff(content)
    if media_type not in UPLOADABLE:
        raise refused("Seuls les fichiers PDF, JPEG, PNG, TIFF, RTF ou texte sont acceptés.",
                      "Only PDF, JPEG, PNG, TIFF, RTF or text files are accepted.")  # fmt: skip
    title = " ".join(title.split())[:MAX_TITLE]
    if not title:
        raise refused("Donnez un titre au document.", "A title is required.")
    if type_code not in PATIENT_TYPES:
        raise refused("Choisissez une catégorie.", "Choose a category.")
    return service.NewDocument(
        unique_id=f"2.25.{uuid.uuid4().int}", content=content, mime_type=media_type, title=title,
        class_code=PATIENT_CLASS, type_code=type_code, format_code=PATIENT_FORMAT,
        creation_time=dt.datetime.fromtimestamp(deps.now(), dt.UTC),
    )  # fmt: skip


async def add_own_document(
    deps: SpaceDeps, viewer: Viewer, content: bytes, title: str, type_code: str
) -> int:
    """Add the patient's own document to their DMP (traced as the viewer's: the patient
    or their legal representative); its id."""
    doc = own_document(deps, content, title, type_code)
    patient = Professional(actor_of(viewer), "", "")
    try:
        [done] = await deps.store.write(
            lambda tx: service.deposit_by_patient(tx, deps.store.blobs, viewer.ins, patient, [doc])
        )
    except DMPError as exc:
        raise refusal(exc) from None
    return done.document_id
