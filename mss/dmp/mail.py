"""The documents a mail to a patient carries, ready to deposit (DOMAIN.md §3–4).

- An `IHE_XDM.ZIP` gives documents and metadata; the PDF and CDA files attached
  beside it are renditions of the same documents and are not deposited again.
- Without an XDM, a CDA R2 gives its own metadata (header).
- A PDF alone gets metadata from the mail, with these defaults: class `10`
  (Compte rendu), type `11488-4` (compte rendu de consultation), format
  `urn:ihe:iti:xds:2017:mimeTypeSufficient`, confidentiality `N`, creation
  time the mail's Date, title the subject (with the file name when the mail carries
  several PDFs; the file name when there is no subject), and a unique
  id derived from the Message-ID and the part (`2.25.<uuid>`), so that a mail
  processed twice deposits once.

Every document must name the recipient's INS: none → MissingINS (903), another
→ INSMismatch (904), a bad key → IncompleteINS (905). Inside an XDM, the
submission set's patientId, each document's patientId *and* each CDA's own
recordTarget must all name the recipient: a CDA of patient A in an XDM naming
patient B is refused (904), and nothing of the mail is deposited. Pure: the
mail's bytes in, documents or a DocumentError out (`mss dmp check` calls it too).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime

from mss.core.mime import Attachment, Headers, ParsedMessage, decode_words, leaves, parse_message
from mss.dmp.cda import CDAHeader, confidentiality_of, is_cda, read_cda_header, require_ins
from mss.dmp.errors import INSMismatch, MissingINS
from mss.dmp.records import HIDDEN_REPR, INVISIBLE, MASKED, NewDocument
from mss.dmp.xdm import (
    Author,
    Document,
    DocumentMetadata,
    PatientId,
    read_xdm,
    unlisted_entries,
)

PDF_CLASS, PDF_TYPE = "10", "11488-4"
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")  # UTF-8, UTF-16 LE and BE
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


def _parts(raw: bytes, parsed: ParsedMessage) -> list[_Part]:
    """The leaves of the one parse of the message (core/mime), decoded."""
    return [
        _Part(leaf.index, leaf.filename, leaf.content_type, leaf.payload(raw))
        for leaf in leaves(parsed.body)
    ]


def _is_xdm(part: _Part | Attachment) -> bool:
    name = part.filename.upper()
    return name.endswith(".ZIP") and ("XDM" in name or part.content_type == "application/zip")


def _is_xml(part: _Part | Attachment) -> bool:
    return part.content_type in ("text/xml", "application/xml", "application/hl7-v3+xml") or (
        part.filename.lower().endswith(".xml")
    )


def _is_cda(part: _Part) -> bool:
    """An XML attachment read as a CDA (plain or self-displaying, in any supported
    encoding); one we cannot read is the mail's error (906), not a silent skip: it may
    be a CDA we cannot see."""
    return _is_xml(part) and is_cda(part.payload)


def _is_pdf(part: _Part) -> bool:
    return part.content_type == "application/pdf" or part.filename.lower().endswith(".pdf")


def _check_patient(patient: PatientId | None, ins: str, what: str) -> None:
    if patient is None or not patient.is_ins:
        raise MissingINS(f"{what}: no INS of the patient")
    if patient.value != ins:
        raise INSMismatch(f"{what}: INS {patient.value} is not the recipient's ({ins})")


@dataclass(frozen=True)
class XDMSummary:
    """What the delivery pipeline needs of a mail's documents (DOMAIN.md §4–5)."""

    packages: int = 0
    documents: int = 0
    invisible: bool = False  # a document marked INVISIBLE_PATIENT, however declared
    unreadable: int = 0  # XDM packages that could not be read (refused to a patient)
    cdas: int = 0  # bare XML attachments (CDA documents, perhaps)
    # A document marked INVISIBLE_REPRESENTANTS_LEGAUX: the mail is the minor's alone.
    hidden_from_representatives: bool = False


def xdm_summary(raw: bytes, attachments: list[Attachment]) -> XDMSummary:
    """The documents among the leaves of the one parse of the mail: each XDM package
    (its METADATA's confidentiality and each CDA's `confidentialityCode`) and each
    bare CDA. Pure; a package that cannot be read, whatever the reason, is counted
    unreadable (the bytes are hostile: any exception is theirs)."""
    packages = documents = unreadable = cdas = 0
    codes: set[str] = set()
    for leaf in attachments:
        if _is_xdm(leaf):
            packages += 1
            try:
                count, found = _xdm_codes(leaf.payload(raw))
            except Exception:  # hostile bytes, whatever they raise: the package is unreadable
                unreadable += 1
                continue
            documents, codes = documents + count, codes | found
        elif _is_xml(leaf):
            cdas += 1
            codes |= _cda_codes(leaf.payload(raw))
        else:
            codes |= _sniffed_codes(leaf.payload(raw))
    return XDMSummary(
        packages, documents, INVISIBLE in codes, unreadable,
        hidden_from_representatives=HIDDEN_REPR in codes, cdas=cdas,
    )  # fmt: skip


def _package_codes(documents: list[Document]) -> set[str]:
    """The confidentiality of the documents, declared by METADATA or by each CDA."""
    codes = {c for d in documents for c in d.metadata.confidentiality_codes}
    for document in documents:
        if _looks_cda(document.content, document.metadata.mime_type):
            codes.add(confidentiality_of(document.content))
    return codes


MAX_NESTING = 3  # XDMs inside XDMs read for their declarations (a zip may hold itself)


def _xdm_codes(payload: bytes, depth: int = 0) -> tuple[int, set[str]]:
    """An XDM's documents count and their confidentiality, with that of what its archive
    holds unlisted (a CDA, another XDM: whoever unzips it reads them too)."""
    package = read_xdm(payload, check_ins=False)
    codes = _package_codes(package.documents)
    if depth < MAX_NESTING:
        for entry in unlisted_entries(payload, package):
            codes |= _sniffed_codes(entry, depth + 1)
    return len(package.documents), codes


def _sniffed_codes(payload: bytes, depth: int = 0) -> set[str]:
    """The confidentiality of a leaf labelled as neither (application/octet-stream,
    text/plain, a .bin, a .txt) or of an unlisted entry: an XDM or a CDA by its bytes
    still declares what the patient may not see (not deposited: only its label and the
    METADATA make a document)."""
    if payload.startswith(b"PK\x03\x04"):
        try:
            return _xdm_codes(payload, depth)[1]
        except Exception:  # a zip that is no XDM (or an unreadable one): no declaration read
            return set()
    start = payload.lstrip(b" \t\r\n")[:2]
    xml = start[:1] == b"<" or start == b"\0<" or payload.startswith(_BOMS)
    return _cda_codes(payload) if xml else set()


def _cda_codes(payload: bytes) -> set[str]:
    """A bare CDA's confidentiality; nothing if not a CDA or unreadable (then not
    deposited: 906)."""
    try:
        return {confidentiality_of(payload)} if is_cda(payload) else set()
    except Exception:  # hostile bytes; the deposit answers 906
        return set()


def documents_of_mail(raw: bytes, ins: str, parsed: ParsedMessage | None = None) -> MailDocuments:
    """The documents to deposit into the DMP of patient `ins`; DocumentError if bad:
    those of its XDMs, else its CDAs, else its PDFs."""
    parsed = parsed or parse_message(raw)
    parts = _parts(raw, parsed)
    out = MailDocuments()
    cdas = [p for p in parts if _is_cda(p)]
    if any(_is_xdm(p) for p in parts):
        _from_xdm(parts, ins, out)
    elif cdas:
        _from_cda(cdas, ins, out)
    else:
        _from_pdf(parts, parsed.headers, out)
    return out


def _from_xdm(parts: list[_Part], ins: str, out: MailDocuments) -> None:
    for part in (p for p in parts if _is_xdm(p)):
        package = read_xdm(part.payload)
        _check_patient(package.submission.patient, ins, "the XDM submission set")
        for document in package.documents:
            meta = document.metadata
            _check_patient(meta.patient, ins, f"document {meta.unique_id}")
            declared = _check_embedded_cda(document.content, meta.mime_type, ins, meta.unique_id)
            new = _xdm_document(meta, document.content)
            if declared in (INVISIBLE, HIDDEN_REPR, MASKED) and declared not in new.confidentiality:
                new = replace(new, confidentiality=(*new.confidentiality, declared))
            out.documents.append(new)
            out.authors.extend(meta.authors)


def _looks_cda(content: bytes, mime_type: str = "") -> bool:
    """Whatever its declared type, a document of an XDM that is XML and a CDA is read
    as one (a label must not hide a CDA of another patient, or invisible to them);
    DocumentError when it looks like XML but cannot be read."""
    start = content.lstrip(b" \t\r\n")[:3]
    xml = "xml" in mime_type.lower() or start[:1] == b"<" or start.startswith(_BOMS)
    return xml and is_cda(content)


def _check_embedded_cda(content: bytes, mime_type: str, ins: str, unique_id: str) -> str:
    """A CDA inside an XDM names the recipient in its own recordTarget too (904 else);
    its confidentialityCode ("" when not a CDA), which the document keeps as well."""
    if not _looks_cda(content, mime_type):
        return ""
    header = read_cda_header(content)
    _check_patient(require_ins(header), ins, f"the CDA of document {unique_id}")
    return header.confidentiality.code if header.confidentiality else ""


def _xdm_document(meta: DocumentMetadata, content: bytes) -> NewDocument:
    return NewDocument(
        unique_id=meta.unique_id, content=content,
        mime_type=meta.mime_type or "application/octet-stream",
        title=meta.title, class_code=meta.class_code.code if meta.class_code else "",
        type_code=meta.type_code.code if meta.type_code else "",
        format_code=meta.format_code.code if meta.format_code else "",
        confidentiality=tuple(c.code for c in meta.confidentiality) or ("N",),
        creation_time=meta.creation_time, service_start=meta.service_start,
        service_stop=meta.service_stop, entry_uuid=meta.entry_uuid,
        replaces=meta.replaces or None,
    )  # fmt: skip


def _from_cda(cdas: list[_Part], ins: str, out: MailDocuments) -> None:
    for part in cdas:
        header = read_cda_header(part.payload)
        _check_patient(require_ins(header), ins, f"CDA {header.unique_id}")
        out.documents.append(_cda_document(header, part))
        if header.author is not None:
            out.authors.append(header.author)


def _cda_document(header: CDAHeader, part: _Part) -> NewDocument:
    confidentiality = (header.confidentiality.code,) if header.confidentiality else ("N",)
    return NewDocument(
        unique_id=header.unique_id, content=part.payload, mime_type="text/xml",
        title=header.title or part.filename, class_code=PDF_CLASS,
        type_code=header.type_code.code if header.type_code else "",
        format_code=CDA_FORMAT, confidentiality=confidentiality,
        creation_time=header.creation_time, service_start=header.service_start,
        service_stop=header.service_stop,
    )  # fmt: skip


def pdf_title(subject: str, filename: str | None, count: int) -> str:
    """The subject the professional wrote (what the patient recognises), with the file
    name when the mail carries several PDFs; the file name without a subject; else
    « Document »."""
    if subject and filename and count > 1:
        return f"{subject} ({filename})"
    return subject or filename or "Document"


def _from_pdf(parts: list[_Part], headers: Headers, out: MailDocuments) -> None:
    date = _date(headers)
    subject = " ".join(decode_words(headers.get("Subject") or "").split())
    pdfs = [p for p in parts if _is_pdf(p)]
    for part in pdfs:
        document = NewDocument(
            unique_id=_derived_id(headers, part), content=part.payload,
            mime_type="application/pdf", title=pdf_title(subject, part.filename, len(pdfs)),
            class_code=PDF_CLASS, type_code=PDF_TYPE, format_code=PDF_FORMAT,
            creation_time=date,
        )  # fmt: skip
        out.documents.append(document)


def _date(headers: Headers) -> dt.datetime | None:
    try:
        value = headers.get("Date")
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None


def _derived_id(headers: Headers, part: _Part) -> str:
    seed = f"{headers.get('Message-ID') or ''}|{part.index}|{part.filename}"
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, seed).int}"
