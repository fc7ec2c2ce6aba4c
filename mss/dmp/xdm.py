"""IHE XDM (`IHE_XDM.ZIP`): read the documents and their metadata (DOMAIN.md §4).

The archive is hostile input until proven otherwise: the number of entries,
each entry's and the total uncompressed size, and the compression ratio are
bounded before anything is decompressed; absolute paths and `..` are
refused; every read is capped (a lying header cannot make us inflate more);
XML is parsed by defusedxml (no DTD, no entities, no network), in the
encodings documents are written in (`XML_ENCODINGS`: UTF-8 as the CI-SIS asks,
UTF-16, Latin-1/-9, Windows-1252, ASCII); any other declared encoding, a byte
order mark that contradicts the declaration or broken bytes are a
DocumentError (906), never another exception. Each document is checked against
the `size` and SHA-1 `hash` of its metadata.

Pure: bytes in, `XDMPackage` out, or a `DocumentError` saying what is wrong.
"""

from __future__ import annotations

import codecs
import datetime as dt
import hashlib
import io
import posixpath
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from mss.core.digits import ascii_digits
from mss.core.ins import INS_OIDS, InvalidINS, parse_ins
from mss.dmp.errors import DMPError, DocumentError, IncompleteINS, MissingINS

RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
NS = {"rim": RIM}
STABLE_DOCUMENT = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
CLASS_CODE = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
TYPE_CODE = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
CONFIDENTIALITY_CODE = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
FORMAT_CODE = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
FACILITY_TYPE = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
PRACTICE_SETTING = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
EVENT_CODE = "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4"
AUTHOR = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
DOCUMENT_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
DOCUMENT_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
SUBMISSION_PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
SUBMISSION_SOURCE_ID = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
SUBMISSION_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
SUBMISSION_AUTHOR = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"


@dataclass(frozen=True)
class Limits:
    max_entries: int = 256
    max_entry_bytes: int = 25 * 1024 * 1024  # the MSSanté message limit
    max_total_bytes: int = 60 * 1024 * 1024
    max_ratio: int = 100  # uncompressed / compressed, for entries over 64 KB
    max_xml_bytes: int = 5 * 1024 * 1024


@dataclass(frozen=True)
class Code:
    code: str
    scheme: str = ""
    display: str = ""


@dataclass(frozen=True)
class Author:
    national_id: str = ""  # e.g. 810003456789 (IDNPS)
    family: str = ""
    given: str = ""
    institution: str = ""
    role: str = ""
    specialty: str = ""


@dataclass(frozen=True)
class PatientId:
    """A CX patient identifier: `279035121518989^^^&1.2.250.1.213.1.4.8&ISO^NH`."""

    value: str
    oid: str

    @property
    def is_ins(self) -> bool:
        return self.oid in INS_OIDS

    def __str__(self) -> str:
        return f"{self.value}^^^&{self.oid}&ISO^NH"


@dataclass(frozen=True)
class DocumentMetadata:
    unique_id: str
    entry_uuid: str = ""
    title: str = ""
    mime_type: str = ""
    class_code: Code | None = None
    type_code: Code | None = None
    format_code: Code | None = None
    confidentiality: tuple[Code, ...] = ()
    facility_type: Code | None = None
    practice_setting: Code | None = None
    event_codes: tuple[Code, ...] = ()
    creation_time: dt.datetime | None = None
    service_start: dt.datetime | None = None
    service_stop: dt.datetime | None = None
    authors: tuple[Author, ...] = ()
    patient: PatientId | None = None
    source_patient: str = ""
    language: str = ""
    hash: str = ""
    size: int | None = None
    uri: str = ""
    replaces: str = ""  # entryUUID of the document this one replaces (RPLC association)

    @property
    def confidentiality_codes(self) -> frozenset[str]:
        return frozenset(c.code for c in self.confidentiality)


@dataclass(frozen=True)
class Document:
    metadata: DocumentMetadata
    content: bytes
    path: str  # inside the archive


@dataclass(frozen=True)
class SubmissionSet:
    unique_id: str = ""
    source_id: str = ""
    patient: PatientId | None = None
    submission_time: dt.datetime | None = None
    authors: tuple[Author, ...] = ()


@dataclass(frozen=True)
class XDMPackage:
    submission: SubmissionSet
    documents: list[Document] = field(default_factory=list)


# --- the archive -----------------------------------------------------------------------------


def _entry_name(name: str) -> str:
    """The normalised path of an entry; refuse absolute paths and `..`."""
    clean = name.replace("\\", "/")
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":"):
        raise DocumentError(f"absolute path in the archive: {name!r}")
    if ".." in clean.split("/"):
        raise DocumentError(f"'..' in a path of the archive: {name!r}")
    return posixpath.normpath(clean)


Entries = dict[str, zipfile.ZipInfo]


def _open_archive(data: bytes, limits: Limits) -> tuple[zipfile.ZipFile, Entries]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError,
            NotImplementedError, RuntimeError, OSError) as exc:  # fmt: skip
        # (NotImplementedError: a version or method zipfile does not read)
        raise DocumentError(f"not a readable zip archive: {exc}") from None
    if len(infos) > limits.max_entries:
        raise DocumentError(f"{len(infos)} entries in the archive (at most {limits.max_entries})")
    total = 0
    entries: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = _entry_name(info.filename)
        if info.is_dir():
            continue
        size = info.file_size
        if size > limits.max_entry_bytes:
            raise DocumentError(f"{name}: {size} bytes (at most {limits.max_entry_bytes})")
        total += info.file_size
        if total > limits.max_total_bytes:
            raise DocumentError(f"the archive expands to over {limits.max_total_bytes} bytes")
        if size > 65536 and size > limits.max_ratio * max(info.compress_size, 1):
            raise DocumentError(f"{name}: compression ratio over {limits.max_ratio} (zip bomb?)")
        entries[name.upper()] = info
    return archive, entries


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    """An entry's bytes, never more than `cap` whatever its header says."""
    try:
        with archive.open(info) as stream:
            data = stream.read(cap + 1)
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, OSError,
            EOFError) as exc:  # fmt: skip
        raise DocumentError(f"{info.filename}: cannot be read ({exc})") from None
    if len(data) > cap or len(data) != info.file_size:
        raise DocumentError(f"{info.filename}: its size does not match the archive's header")
    return data


XML_ENCODINGS = frozenset(
    {"utf-8", "utf8", "utf-16", "utf16", "iso-8859-1", "latin-1", "latin1", "iso-8859-15",
     "windows-1252", "cp1252", "us-ascii", "ascii"}
)  # fmt: skip
_DECLARED = re.compile(rb"""^<\?xml[^>]*?\sencoding\s*=\s*["']([^"']*)["']""")
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF32_LE, "utf-32"),
         (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))  # fmt: skip


def _check_encoding(data: bytes, what: str) -> None:
    """Only the encodings documents are written in; a BOM agrees with the declaration."""
    bom = next((name for mark, name in _BOMS if data.startswith(mark)), None)
    if bom == "utf-32":
        raise DocumentError(f"{what}: UTF-32 is not a supported encoding")
    declared_bytes = _DECLARED.match(data.removeprefix(codecs.BOM_UTF8))
    if declared_bytes is None:
        return  # UTF-8, or UTF-16 by its BOM (XML 1.0 §4.3.3); expat checks the bytes
    declared = declared_bytes.group(1).decode("ascii", "replace").strip().lower()
    if declared not in XML_ENCODINGS:
        raise DocumentError(f"{what}: encoding {declared[:40]!r} is not supported")
    if bom == "utf-8" and declared not in ("utf-8", "utf8"):
        raise DocumentError(f"{what}: a UTF-8 byte order mark but encoding {declared!r}")


def parse_xml(data: bytes, what: str) -> Element:
    """XML without DTD, entities or external references (defusedxml), in a supported
    encoding; DocumentError whatever is wrong with the bytes."""
    _check_encoding(data, what)
    try:
        root: Element = ElementTree.fromstring(
            data, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException as exc:
        raise DocumentError(f"{what}: forbidden XML construct ({exc.__class__.__name__})") from None
    except ElementTree.ParseError as exc:
        raise DocumentError(f"{what}: not well-formed XML ({exc})") from None
    except (LookupError, ValueError) as exc:  # an encoding expat cannot use (UnicodeError)
        raise DocumentError(f"{what}: unreadable encoding ({exc})") from None
    return root


# What `zipfile` itself raises on a corrupted archive besides BadZipFile: a negative
# seek (ValueError), an entry without a name (IndexError), a truncated header...
_CORRUPTED = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, ValueError, IndexError,
              EOFError, NotImplementedError, RuntimeError, OSError)  # fmt: skip


def read_xdm(data: bytes, limits: Limits | None = None, *, check_ins: bool = True) -> XDMPackage:
    """The submission set and documents of an `IHE_XDM.ZIP`; DocumentError when bad.
    `check_ins=False`: an INS with a bad key is kept as it is (what the delivery
    pipeline reads to see the confidentiality of the documents; the deposit says 905)."""
    try:
        return _read_xdm(data, limits or Limits(), check_ins)
    except DMPError:
        raise
    except _CORRUPTED as exc:  # whatever corrupted bytes make zipfile raise
        raise DocumentError(f"not a readable zip archive ({type(exc).__name__}: {exc})") from None


def _read_xdm(data: bytes, limits: Limits, check_ins: bool) -> XDMPackage:
    archive, entries = _open_archive(data, limits)
    with archive:
        metadata_files = sorted(
            name for name in entries
            if name.startswith("IHE_XDM/") and name.endswith("/METADATA.XML")
            and name.count("/") == 2
        )  # fmt: skip
        if not metadata_files:
            raise DocumentError("no IHE_XDM/<SUBSET>/METADATA.XML in the archive")
        submission = SubmissionSet()
        documents: list[Document] = []
        for name in metadata_files:
            xml = _read(archive, entries[name], limits.max_xml_bytes)
            root = parse_xml(xml, name)
            subset = name.rsplit("/", 1)[0]
            if not submission.unique_id:
                submission = _submission(root, check_ins)
            for meta in _documents(root, check_ins):
                path = posixpath.normpath(f"{subset}/{_entry_name(meta.uri)}").upper()
                info = entries.get(path)
                if info is None:
                    raise DocumentError(f"document {meta.uri!r} of {name} is not in the archive")
                content = _read(archive, info, limits.max_entry_bytes)
                _check(meta, content, info.filename)
                documents.append(Document(meta, content, info.filename))
    if not documents:
        raise DocumentError("the XDM holds no document")
    return XDMPackage(submission, documents)


def unlisted_entries(data: bytes, package: XDMPackage, limits: Limits | None = None) -> list[bytes]:
    """The entries of a package's archive that are neither a METADATA.XML nor one of its
    documents: whoever unzips it reads them too (a CDA or another XDM left unlisted)."""
    limits = limits or Limits()
    listed = {d.path for d in package.documents}
    archive, entries = _open_archive(data, limits)
    with archive:
        return [_read(archive, info, limits.max_entry_bytes) for name, info in entries.items()
                if info.filename not in listed and not name.endswith("/METADATA.XML")]  # fmt: skip


def _check(meta: DocumentMetadata, content: bytes, path: str) -> None:
    if meta.size is not None and meta.size != len(content):
        raise DocumentError(f"{path}: {len(content)} bytes, the metadata says {meta.size}")
    if meta.hash and hashlib.sha1(content).hexdigest() != meta.hash.lower():  # noqa: S324 - XDM's hash
        raise DocumentError(f"{path}: SHA-1 differs from the metadata's hash")


# --- METADATA.XML (ebRIM 3.0) ----------------------------------------------------------------


def _slots(element: Element) -> dict[str, list[str]]:
    slots: dict[str, list[str]] = {}
    for slot in element.findall("rim:Slot", NS):
        values = [v.text or "" for v in slot.findall("rim:ValueList/rim:Value", NS)]
        slots[slot.get("name", "")] = values
    return slots


def _name(element: Element) -> str:
    string = element.find("rim:Name/rim:LocalizedString", NS)
    return string.get("value", "") if string is not None else ""


def _first(slots: dict[str, list[str]], name: str) -> str:
    values = slots.get(name) or [""]
    return values[0].strip()


def _code(classification: Element) -> Code:
    return Code(
        classification.get("nodeRepresentation", ""),
        _first(_slots(classification), "codingScheme"),
        _name(classification),
    )


def parse_time(value: str) -> dt.datetime | None:
    """`YYYYMMDD[hh[mm[ss]]]` (UTC) → datetime; None when empty or malformed."""
    digits = value.strip()[:14]
    if not ascii_digits(digits) or len(digits) < 8:
        return None
    digits = digits.ljust(14, "0")
    try:
        return dt.datetime.strptime(digits, "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def parse_author(slots: dict[str, list[str]]) -> Author:
    """authorPerson XCN: `899700367909^NOM^Prénom^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS`."""
    person = _first(slots, "authorPerson").split("^")
    institution = _first(slots, "authorInstitution").split("^")[0]
    return Author(
        national_id=person[0] if person else "",
        family=person[1] if len(person) > 1 else "",
        given=person[2] if len(person) > 2 else "",
        institution=institution,
        role=_first(slots, "authorRole").split("^")[0],
        specialty=_first(slots, "authorSpecialty").split("^")[0],
    )


def parse_patient_id(value: str) -> PatientId:
    """A CX patient id, checked when it claims to be an INS."""
    value = value.strip()
    if not value:
        raise MissingINS("no patient id in the metadata")
    number, _, rest = value.partition("^")
    parts = rest.split("^")
    authority = parts[2] if len(parts) > 2 else ""
    oid = authority.split("&")[1] if authority.count("&") >= 1 else ""
    patient = PatientId(number.strip(), oid)
    if patient.is_ins:
        if len(patient.value) != 15:
            raise IncompleteINS(f"INS {patient.value!r}: 15 characters expected")
        try:
            parse_ins(patient.value)
        except InvalidINS as exc:
            raise IncompleteINS(f"INS {patient.value!r}: {exc.reason}") from None
    return patient


def _external(element: Element, scheme: str) -> str:
    for ext in element.findall("rim:ExternalIdentifier", NS):
        if ext.get("identificationScheme") == scheme:
            return ext.get("value", "").strip()
    return ""


def _classifications(element: Element, scheme: str) -> list[Element]:
    return [c for c in element.findall("rim:Classification", NS)
            if c.get("classificationScheme") == scheme]  # fmt: skip


def _one(element: Element, scheme: str) -> Code | None:
    found = _classifications(element, scheme)
    return _code(found[0]) if found else None


def _codes(element: Element, scheme: str) -> tuple[Code, ...]:
    return tuple(_code(c) for c in _classifications(element, scheme))


def _authors(element: Element, scheme: str) -> tuple[Author, ...]:
    return tuple(parse_author(_slots(c)) for c in _classifications(element, scheme))


RPLC = "urn:ihe:iti:2007:AssociationType:RPLC"


def _replacements(root: Element) -> dict[str, str]:
    """New document's id → the entryUUID it replaces (RPLC associations)."""
    return {
        a.get("sourceObject", ""): a.get("targetObject", "")
        for a in root.iter(f"{{{RIM}}}Association")
        if a.get("associationType", "").endswith("RPLC") and a.get("targetObject")
    }


def _patient(value: str, check_ins: bool) -> PatientId | None:
    if not value:
        return None
    try:
        return parse_patient_id(value)
    except IncompleteINS:
        if check_ins:
            raise
        return PatientId(value.partition("^")[0].strip(), "")


def _documents(root: Element, check_ins: bool) -> list[DocumentMetadata]:
    replaces = _replacements(root)
    out = []
    for obj in root.iter(f"{{{RIM}}}ExtrinsicObject"):
        if obj.get("objectType") != STABLE_DOCUMENT:
            continue
        slots = _slots(obj)
        unique_id = _external(obj, DOCUMENT_UNIQUE_ID)
        if not unique_id:
            raise DocumentError(f"document {obj.get('id', '?')}: no uniqueId")
        size = _first(slots, "size")
        patient = _external(obj, DOCUMENT_PATIENT_ID)
        out.append(
            DocumentMetadata(
                unique_id=unique_id,
                entry_uuid=obj.get("id", ""),
                title=_name(obj),
                mime_type=obj.get("mimeType", ""),
                class_code=_one(obj, CLASS_CODE),
                type_code=_one(obj, TYPE_CODE),
                format_code=_one(obj, FORMAT_CODE),
                confidentiality=_codes(obj, CONFIDENTIALITY_CODE),
                facility_type=_one(obj, FACILITY_TYPE),
                practice_setting=_one(obj, PRACTICE_SETTING),
                event_codes=_codes(obj, EVENT_CODE),
                creation_time=parse_time(_first(slots, "creationTime")),
                service_start=parse_time(_first(slots, "serviceStartTime")),
                service_stop=parse_time(_first(slots, "serviceStopTime")),
                authors=_authors(obj, AUTHOR),
                patient=_patient(patient, check_ins),
                source_patient=_first(slots, "sourcePatientId"),
                language=_first(slots, "languageCode"),
                hash=_first(slots, "hash"),
                size=int(size) if ascii_digits(size) else None,
                uri=_first(slots, "URI"),
                replaces=replaces.get(obj.get("id", ""), ""),
            )
        )
        if not out[-1].uri:
            raise DocumentError(f"document {unique_id}: no URI slot")
    return out


def _submission(root: Element, check_ins: bool) -> SubmissionSet:
    for package in root.iter(f"{{{RIM}}}RegistryPackage"):
        unique_id = _external(package, SUBMISSION_UNIQUE_ID)
        if not unique_id:
            continue
        patient = _external(package, SUBMISSION_PATIENT_ID)
        slots = _slots(package)
        return SubmissionSet(
            unique_id=unique_id,
            source_id=_external(package, SUBMISSION_SOURCE_ID),
            patient=_patient(patient, check_ins),
            submission_time=parse_time(_first(slots, "submissionTime")),
            authors=_authors(package, SUBMISSION_AUTHOR),
        )
    return SubmissionSet()
