"""The documents a mail to a patient carries, ready to deposit (DOMAIN.md §3–4).

- An `IHE_XDM.ZIP` gives documents and metadata; the PDF and CDA files attached
  beside it are renditions of the same documents and are not deposited again.
- Without an XDM, a CDA R2 gives its own metadata (header).
- A PDF alone gets metadata from the mail, with these defaults: class `10`
  (Compte rendu), type `11488-4` (compte rendu de consultation), format
  `urn:ihe:iti:xds:2017:mimeTypeSufficient`, confidentiality `N`, creation
  time the mail's Date, title the file name (else the subject), and a unique
  id derived from the Message-ID and the part (`2.25.<uuid>`), so that a mail
  processed twice deposits once.

Every document must name the recipient's INS: none → MissingINS (903), another
→ INSMismatch (904), a bad key → IncompleteINS (905). Pure.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime

from mss.dmp.cda import read_cda_header, require_ins
from mss.dmp.errors import DocumentError, INSMismatch, MissingINS
from mss.dmp.records import INVISIBLE, NewDocument
from mss.dmp.xdm import Author, PatientId, read_xdm

PDF_CLASS, PDF_TYPE = "10", "11488-4"
PDF_FORMAT = "urn:ihe:iti:xds:2017:mimeTypeSufficient"
CDA_FORMAT = "urn:ihe:iti:xds-sd:text:2008"


@dataclass
class MailDocuments:
    documents: list[NewDocument] = field(default_factory=list)
    authors: list[Author] = field(default_factory=list)  # as the documents name them


@dataclass(frozen=True)
class _Part:
    index: int
    filename: str
    content_type: str
    payload: bytes


def _parts(raw: bytes) -> tuple[EmailMessage, list[_Part]]:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    parts = []
    for index, part in enumerate(message.walk()):
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        parts.append(
            _Part(index, part.get_filename() or "", part.get_content_type().lower(), payload)
        )
    return message, parts


def _is_xdm(part: _Part) -> bool:
    name = part.filename.upper()
    return name.endswith(".ZIP") and ("XDM" in name or part.content_type == "application/zip")


def _is_xml(part: _Part) -> bool:
    return part.content_type in ("text/xml", "application/xml", "application/hl7-v3+xml") or (
        part.filename.lower().endswith(".xml")
    )


def _is_pdf(part: _Part) -> bool:
    return part.content_type == "application/pdf" or part.filename.lower().endswith(".pdf")


def _check_patient(patient: PatientId | None, ins: str, what: str) -> None:
    if patient is None or not patient.is_ins:
        raise MissingINS(f"{what}: no INS of the patient")
    if patient.value != ins:
        raise INSMismatch(f"{what}: INS {patient.value} is not the recipient's ({ins})")


def has_invisible_document(raw: bytes) -> bool:
    """Whether an XDM of the mail marks a document INVISIBLE_PATIENT (unreadable: no)."""
    try:
        _message, parts = _parts(raw)
        for part in parts:
            if _is_xdm(part):
                package = read_xdm(part.payload)
                if any(INVISIBLE in d.metadata.confidentiality_codes for d in package.documents):
                    return True
    except (DocumentError, ValueError, LookupError):
        return False
    return False


def documents_of_mail(raw: bytes, ins: str) -> MailDocuments:
    """The documents to deposit into the DMP of patient `ins`; DocumentError if bad."""
    message, parts = _parts(raw)
    out = MailDocuments()
    xdms = [p for p in parts if _is_xdm(p)]
    for part in xdms:
        package = read_xdm(part.payload)
        _check_patient(package.submission.patient, ins, "the XDM submission set")
        for document in package.documents:
            meta = document.metadata
            _check_patient(meta.patient, ins, f"document {meta.unique_id}")
            new = NewDocument(
                    unique_id=meta.unique_id, content=document.content,
                    mime_type=meta.mime_type or "application/octet-stream",
                    title=meta.title, class_code=meta.class_code.code if meta.class_code else "",
                    type_code=meta.type_code.code if meta.type_code else "",
                    format_code=meta.format_code.code if meta.format_code else "",
                    confidentiality=tuple(c.code for c in meta.confidentiality) or ("N",),
                    creation_time=meta.creation_time, service_start=meta.service_start,
                    service_stop=meta.service_stop, entry_uuid=meta.entry_uuid,
                    replaces=meta.replaces or None,
            )  # fmt: skip
            out.documents.append(new)
            out.authors.extend(meta.authors)
    if xdms:
        return out
    cdas = []
    for part in parts:
        if _is_xml(part) and b"ClinicalDocument" in part.payload[:4096]:
            header = read_cda_header(part.payload)
            patient = require_ins(header)
            _check_patient(patient, ins, f"CDA {header.unique_id}")
            cdas.append(part)
            new = NewDocument(
                    unique_id=header.unique_id, content=part.payload, mime_type="text/xml",
                    title=header.title or part.filename, class_code=PDF_CLASS,
                    type_code=header.type_code.code if header.type_code else "",
                    format_code=CDA_FORMAT,
                    confidentiality=(header.confidentiality.code,) if header.confidentiality
                    else ("N",),
                    creation_time=header.creation_time, service_start=header.service_start,
                    service_stop=header.service_stop,
            )  # fmt: skip
            out.documents.append(new)
            if header.author is not None:
                out.authors.append(header.author)
    if cdas:
        return out
    date = _date(message)
    for part in parts:
        if _is_pdf(part):
            new = NewDocument(
                    unique_id=_derived_id(message, part), content=part.payload,
                    mime_type="application/pdf",
                    title=part.filename or str(message.get("Subject", "Document")),
                    class_code=PDF_CLASS, type_code=PDF_TYPE, format_code=PDF_FORMAT,
                    creation_time=date,
            )  # fmt: skip
            out.documents.append(new)
    return out


def _date(message: EmailMessage) -> dt.datetime | None:
    try:
        value = message.get("Date")
        return parsedate_to_datetime(str(value)) if value else None
    except (TypeError, ValueError):
        return None


def _derived_id(message: EmailMessage, part: _Part) -> str:
    seed = f"{message.get('Message-ID', '')}|{part.index}|{part.filename}"
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, seed).int}"
