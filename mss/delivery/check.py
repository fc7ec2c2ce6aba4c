"""`mss dmp check`: what the DMP deposit of a file would do, without depositing.

For software vendors, before they send (issue 14): an `IHE_XDM.ZIP`, a bare CDA (or
PDF) or a whole `.eml` message goes through the very analysis of the deposit path
(`dmp/mail.py`: `xdm_summary`, which the pipeline refuses a mail on, and
`documents_of_mail`, which the deposit runner deposits or answers an MDN error
with), and the report says what was read (the submission set, each document's
class, type, confidentiality and patient INS, from METADATA.XML and from the CDA's
recordTarget) and every error with its ANS MDN code (DOMAIN.md §5,
"Acknowledgements") and a French explanation with its English meaning.

A file that is not a message is checked as the one attachment of a mail to the
patient. The recipient is the `--ins` given, else the patients the `.eml` is
addressed to, else the INS the file names itself. What needs the database (the
patient is known here, their DMP is open, their identity qualified, the author's
rights) is not checked. Pure: bytes in, `FileReport` out; no store, no settings.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from email.policy import default
from email.utils import getaddresses
from typing import Any

from mss.core.address import PATIENT_DOMAIN
from mss.core.ins import InvalidINS, parse_ins
from mss.core.mime import Attachment, ParsedMessage, leaves, parse_message
from mss.delivery.deposits import check_documents
from mss.delivery.to_patient import documents_to_patient
from mss.dmp.cda import CDAHeader, read_cda_header
from mss.dmp.errors import MDN_LABELS, DMPError
from mss.dmp.mail import documents_of_mail
from mss.dmp.records import NewDocument
from mss.dmp.xdm import Document, DocumentMetadata, PatientId, SubmissionSet, read_xdm
from mss.errors import Rejection

# What each ANS code means for the sender (French, then the English meaning).
EXPLANATIONS = {
    900: "Version non supportée : le format du document n'est pas accepté"
    " (unsupported version: the document's format is not accepted)",
    901: "Seul l'auteur d'un document peut le remplacer ou le supprimer"
    " (only the author of a document may replace or delete it)",
    902: "Le patient n'a pas de DMP ici (unknown patient: no DMP here)",
    903: "Le document ne porte pas l'INS du patient (recordTarget ou patientId)"
    " (the document carries no INS of the patient)",
    904: "L'INS du document n'est pas celui du patient destinataire"
    " (the document's INS is not the recipient patient's)",
    905: "L'INS du document est incomplet ou sa clé est fausse"
    " (the document's INS is incomplete or its key is wrong)",
    906: "Le document ou l'archive ne peut pas être lu ou intégré"
    " (the document or the archive cannot be read or deposited)",
}
NO_DOCUMENT = "aucun document à déposer : ni IHE_XDM.ZIP, ni CDA, ni PDF (no document to deposit)"
TECHNICAL = "erreur technique pendant l'analyse (technical error while reading)"


@dataclass(frozen=True)
class CheckError:
    """One reason the deposit would fail: its ANS code (MDN) or SMTP refusal."""

    code: int  # the ANS MDN code (DOMAIN.md §5); 906 for anything else
    explanation: str  # French, with the English meaning in parentheses
    detail: str  # what exactly, as the deposit path says it
    name: str = "DMPInvalidDocument"  # what DMP-compatible software shows
    smtp: str = ""  # "550 5.7.1" when the mail itself would be refused at once
    ins: str = ""  # the recipient it was checked for

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code, "label": MDN_LABELS[self.code], "name": self.name,
            "explanation": self.explanation, "detail": self.detail,
            "smtp": self.smtp or None, "ins": self.ins or None,
        }  # fmt: skip


@dataclass
class FileReport:
    file: str
    kind: str  # "xdm", "cda", "pdf", "mail", "other"
    recipients: list[str] = field(default_factory=list)
    recipient_source: str = ""  # "option", "mail", "metadata", "cda", "" (none)
    submission_sets: list[dict[str, Any]] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)
    errors: list[CheckError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file, "kind": self.kind, "ok": self.ok,
            "recipients": self.recipients, "recipient_source": self.recipient_source or None,
            "submission_sets": self.submission_sets, "documents": self.documents,
            "errors": [e.to_json() for e in self.errors],
        }  # fmt: skip


# --- the file as a mail ----------------------------------------------------------------------


def kind_of(name: str, data: bytes) -> str:
    if name.lower().endswith(".eml"):
        return "mail"
    if data.startswith(b"PK\x03\x04") or name.lower().endswith(".zip"):
        return "xdm"
    if data.startswith(b"%PDF"):
        return "pdf"
    return "cda" if b"ClinicalDocument" in data[:4096] else "other"


def as_mail(name: str, data: bytes, kind: str) -> bytes:
    """A file that is not a message, as the one attachment of a mail to a patient."""
    mail = EmailMessage(policy=default)
    mail["From"] = "logiciel@pro.mssante.test"
    mail["To"] = f"patient@{PATIENT_DOMAIN}"
    mail["Subject"] = "mss dmp check"
    mail["Message-ID"] = "<check@mss.invalid>"
    mail.set_content("mss dmp check")
    types = {"xdm": ("application", "zip"), "pdf": ("application", "pdf"),
             "cda": ("text", "xml")}  # fmt: skip
    maintype, subtype = types.get(kind, ("application", "octet-stream"))
    mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return mail.as_bytes()


def check_file(
    name: str, data: bytes, ins: str | None = None, *, max_documents: int = 0
) -> FileReport:
    """What depositing this file (or this message) into the recipient's DMP would do;
    more than `max_documents` documents (0: no limit) is the deposit's 906."""
    kind = kind_of(name, data)
    raw = data if kind == "mail" else as_mail(name.rsplit("/", 1)[-1], data, kind)
    report = FileReport(name, kind)
    try:
        parsed = parse_message(raw)
        packed = _packages(report, raw, parsed)
        metadata = {key: d.metadata for key, d in packed.items()}
        report.recipients, report.recipient_source = _recipients(report, raw, parsed, ins, metadata)
        report.documents = [_document_of_xdm(d) for d in packed.values()] or _cdas(raw, parsed)
        _verdict(report, raw, parsed, metadata, max_documents)
    except Exception as exc:  # anything else: the deposit runner would give up (906)
        report.errors.append(_technical(exc))
    return report


# --- what was read ---------------------------------------------------------------------------


def _packages(report: FileReport, raw: bytes, parsed: ParsedMessage) -> dict[str, Document]:
    """The submission sets of the XDMs read; their documents by unique id."""
    documents: dict[str, Document] = {}
    for leaf in _archives(parsed):
        try:
            package = read_xdm(leaf.payload(raw))
        except (DMPError, ValueError, LookupError):
            continue  # the verdict says why
        report.submission_sets.append(_submission(package.submission))
        documents.update((d.metadata.unique_id, d) for d in package.documents)
    return documents


def _archives(parsed: ParsedMessage) -> list[Attachment]:
    return [leaf for leaf in leaves(parsed.body) if leaf.filename.upper().endswith(".ZIP")]


def _recipients(
    report: FileReport, raw: bytes, parsed: ParsedMessage, ins: str | None,
    metadata: dict[str, DocumentMetadata],
) -> tuple[list[str], str]:  # fmt: skip
    """Whose DMP: the option, the patients a message is addressed to, else the patient
    the file names (its submission set, its documents' metadata, its CDA)."""
    if ins:
        return [ins], "option"
    addressed = _patients_addressed(parsed) if report.kind == "mail" else []
    if addressed:
        return addressed, "mail"
    named = [s["patient_ins"] for s in report.submission_sets if s["patient_ins"]]
    named += [m.patient.value for m in metadata.values() if m.patient and m.patient.is_ins]
    if named:
        return [named[0]], "metadata"
    named = [i for i in (_ins_of_cda(leaf.payload(raw)) for leaf in leaves(parsed.body)) if i]
    return (named[:1], "cda") if named else ([], "")


def _patients_addressed(parsed: ParsedMessage) -> list[str]:
    """The patients (`<INS>@patient.mssante.fr`) among the To and Cc of a message."""
    fields = parsed.headers.get_all("To") + parsed.headers.get_all("Cc")
    found = []
    for _, address in getaddresses(fields):
        local, _, domain = address.rpartition("@")
        if domain.lower() == PATIENT_DOMAIN:
            try:
                found.append(parse_ins(local).matricule)
            except InvalidINS:
                found.append(local)  # checked, and refused, as the deposit would
    return list(dict.fromkeys(found))


def _ins_of_cda(content: bytes) -> str | None:
    """The INS of a CDA's recordTarget (None: not a CDA, or no INS)."""
    if b"ClinicalDocument" not in content[:4096]:
        return None
    try:
        patient = read_cda_header(content).patient
    except (DMPError, ValueError, LookupError):
        return None
    return patient.value if patient is not None else None


def _ins(patient: PatientId | None) -> str | None:
    return patient.value if patient is not None and patient.is_ins else None


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _submission(submission: SubmissionSet) -> dict[str, Any]:
    return {
        "unique_id": submission.unique_id, "source_id": submission.source_id,
        "patient_id": str(submission.patient) if submission.patient else None,
        "patient_ins": _ins(submission.patient),
        "submission_time": _iso(submission.submission_time),
        "authors": [a.national_id for a in submission.authors],
    }  # fmt: skip


def _visibility(codes: tuple[str, ...]) -> dict[str, bool]:
    probe = NewDocument(unique_id="", content=b"", mime_type="", confidentiality=codes)
    return {
        "professionals": not probe.masked, "patient": not probe.invisible_patient,
        "legal_representatives": not probe.hidden_from_representatives,
    }  # fmt: skip


def _document(doc: NewDocument, meta: DocumentMetadata | None) -> dict[str, Any]:
    """A document as the deposit would store it, and the patient it names."""
    return {
        "unique_id": doc.unique_id, "title": doc.title, "mime_type": doc.mime_type,
        "class_code": doc.class_code or None, "type_code": doc.type_code or None,
        "format_code": doc.format_code or None, "confidentiality": list(doc.confidentiality),
        "visibility": _visibility(doc.confidentiality),
        "creation_time": _iso(doc.creation_time), "replaces": doc.replaces,
        "patient_ins_metadata": _ins(meta.patient) if meta else None,
        "patient_ins_cda": _ins_of_cda(doc.content), "size": len(doc.content),
    }  # fmt: skip


def _document_of_xdm(document: Document) -> dict[str, Any]:
    """A document as its XDM describes it (when the deposit would not read it)."""
    meta = document.metadata
    codes = tuple(c.code for c in meta.confidentiality) or ("N",)
    return {
        "unique_id": meta.unique_id, "title": meta.title, "mime_type": meta.mime_type,
        "class_code": meta.class_code.code if meta.class_code else None,
        "type_code": meta.type_code.code if meta.type_code else None,
        "format_code": meta.format_code.code if meta.format_code else None,
        "confidentiality": list(codes), "visibility": _visibility(codes),
        "creation_time": _iso(meta.creation_time), "replaces": meta.replaces or None,
        "patient_ins_metadata": _ins(meta.patient),
        "patient_ins_cda": _ins_of_cda(document.content),
        "size": meta.size,
    }  # fmt: skip


def _cdas(raw: bytes, parsed: ParsedMessage) -> list[dict[str, Any]]:
    """The CDAs of the mail as their headers describe them (when the deposit would not
    read them)."""
    out = []
    for leaf in leaves(parsed.body):
        content = leaf.payload(raw)
        if b"ClinicalDocument" not in content[:4096]:
            continue
        try:
            out.append(_document_of_cda(read_cda_header(content), len(content)))
        except (DMPError, ValueError, LookupError):
            continue  # the verdict says why
    return out


def _document_of_cda(header: CDAHeader, size: int) -> dict[str, Any]:
    codes = (header.confidentiality.code,) if header.confidentiality else ("N",)
    return {
        "unique_id": header.unique_id, "title": header.title, "mime_type": "text/xml",
        "class_code": None, "type_code": header.type_code.code if header.type_code else None,
        "format_code": None, "confidentiality": list(codes), "visibility": _visibility(codes),
        "creation_time": _iso(header.creation_time), "replaces": None,
        "patient_ins_metadata": None, "patient_ins_cda": _ins(header.patient), "size": size,
    }  # fmt: skip


# --- the verdict -----------------------------------------------------------------------------


def _verdict(
    report: FileReport,
    raw: bytes,
    parsed: ParsedMessage,
    metadata: dict[str, DocumentMetadata],
    max_documents: int,
) -> None:
    """The pipeline's refusals (the mail is not even accepted), then the deposit's, for
    each recipient; the documents as the first deposit that reads them would store them."""
    refused = _refusal(raw, parsed)
    _read_documents(report, raw, parsed, metadata, max_documents)
    if refused is not None:  # refused at DATA: no deposit, one error (the deposit's detail)
        same = [e for e in report.errors if e.code == refused.code]
        detail = same[0].detail if same else refused.detail
        report.errors = [replace(refused, detail=detail)]


def _read_documents(
    report: FileReport,
    raw: bytes,
    parsed: ParsedMessage,
    metadata: dict[str, DocumentMetadata],
    max_documents: int,
) -> None:
    deposited = False
    for recipient in report.recipients or [""]:
        try:
            found = documents_of_mail(raw, recipient, parsed)
            check_documents(found.documents, max_documents)
        except DMPError as exc:
            report.errors.append(_error(exc, recipient))
            continue
        if not found.documents:
            report.errors.append(CheckError(906, EXPLANATIONS[906], NO_DOCUMENT, ins=recipient))
        elif not deposited:
            report.documents = [_document(d, metadata.get(d.unique_id)) for d in found.documents]
            deposited = True


def _refusal(raw: bytes, parsed: ParsedMessage) -> CheckError | None:
    """What `Pipeline.dmp_documents` refuses a professional's mail to a patient for."""
    try:
        documents_to_patient(raw, parsed, leaves(parsed.body))
    except Rejection as rejection:
        return _rejected(rejection)
    return None


def _rejected(rejection: Rejection) -> CheckError:
    smtp = f"{rejection.code} {rejection.enhanced}"
    return CheckError(906, rejection.text, rejection.text, name="SMTPRefusal", smtp=smtp)


def _error(exc: DMPError, recipient: str) -> CheckError:
    return CheckError(exc.mdn_code, EXPLANATIONS[exc.mdn_code], str(exc), exc.name, ins=recipient)


def _technical(exc: Exception) -> CheckError:
    detail = f"{TECHNICAL}: {exc.__class__.__name__}: {exc}"
    return CheckError(906, EXPLANATIONS[906], detail)
