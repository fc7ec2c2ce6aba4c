"""The header of a CDA R2 document: the metadata a bare CDA brings (DOMAIN.md §4).

Without an XDM, the CDA header gives the metadata: typeCode = `code`,
uniqueId = `id/@root` (and `@extension`), creationTime = `effectiveTime`,
patient = `recordTarget/patientRole/id` (the INS among them), author =
`author/assignedAuthor` (national id and name), service times from
`documentationOf/serviceEvent/effectiveTime`. Parsed by defusedxml. Pure.

A CDA "auto-présentable" (CI-SIS: a document that displays itself in a browser) is an
XSL stylesheet whose data element carries the ClinicalDocument (the ANS examples
`*_Auto-Presentable.xml`: `xsl:stylesheet/data:Contenu/ClinicalDocument`): its header
is the embedded CDA's; the document deposited is the file as sent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from mss.core.ins import INS_OIDS
from mss.dmp.errors import DocumentError, MissingINS
from mss.dmp.xdm import Author, Code, PatientId, parse_patient_id, parse_time, parse_xml

HL7 = "urn:hl7-org:v3"
NS = {"cda": HL7}
CLINICAL_DOCUMENT = f"{{{HL7}}}ClinicalDocument"
XSL = "http://www.w3.org/1999/XSL/Transform"
# The roots of a self-displaying CDA: an XSL stylesheet (CI-SIS "auto-présentable"),
# or an XHTML page, embedding the ClinicalDocument
SELF_DISPLAYING = (
    f"{{{XSL}}}stylesheet",
    f"{{{XSL}}}transform",
    "{http://www.w3.org/1999/xhtml}html",
)
# the national id of a professional (IDNPS)
OID_NATIONAL_ID = "1.2.250.1.71.4.2.1"


@dataclass(frozen=True)
class CDAHeader:
    unique_id: str
    type_code: Code | None
    title: str
    creation_time: dt.datetime | None
    confidentiality: Code | None
    patient: PatientId | None  # the INS when the document has one
    patient_ids: tuple[PatientId, ...]
    author: Author | None
    service_start: dt.datetime | None
    service_stop: dt.datetime | None


def _attr(element: Element | None, name: str) -> str:
    return element.get(name, "").strip() if element is not None else ""


def _text(element: Element | None) -> str:
    return "".join(element.itertext()).strip() if element is not None else ""


def read_cda_header(data: bytes) -> CDAHeader:
    """The metadata of a CDA R2 document; DocumentError if it is not one."""
    root = clinical_document(parse_xml(data, "CDA document"))
    ident = root.find("cda:id", NS)
    root_oid, extension = _attr(ident, "root"), _attr(ident, "extension")
    if not root_oid:
        raise DocumentError("the CDA has no id/@root")
    code = root.find("cda:code", NS)
    confidentiality = root.find("cda:confidentialityCode", NS)
    ids = []
    for element in root.findall("cda:recordTarget/cda:patientRole/cda:id", NS):
        value, oid = _attr(element, "extension"), _attr(element, "root")
        if value:
            ids.append(PatientId(value, oid))
    patient = None
    for candidate in ids:
        if candidate.oid in INS_OIDS:
            patient = parse_patient_id(str(candidate))  # checks the key: 905 when bad
            break
    service = root.find("cda:documentationOf/cda:serviceEvent/cda:effectiveTime", NS)
    low = service.find("cda:low", NS) if service is not None else None
    high = service.find("cda:high", NS) if service is not None else None
    type_code = None
    if _attr(code, "code"):
        type_code = Code(_attr(code, "code"), _attr(code, "codeSystem"), _attr(code, "displayName"))
    secrecy = None
    if _attr(confidentiality, "code"):
        secrecy = Code(_attr(confidentiality, "code"), _attr(confidentiality, "codeSystem"))
    return CDAHeader(
        unique_id=f"{root_oid}^{extension}" if extension else root_oid,
        type_code=type_code,
        title=_text(root.find("cda:title", NS)),
        creation_time=parse_time(_attr(root.find("cda:effectiveTime", NS), "value")),
        confidentiality=secrecy,
        patient=patient,
        patient_ids=tuple(ids),
        author=_author(root),
        service_start=parse_time(_attr(low, "value")),
        service_stop=parse_time(_attr(high, "value")),
    )


def is_cda(data: bytes) -> bool:
    """Whether these XML bytes are a CDA (plain or self-displaying), whatever their
    encoding (UTF-16 hides the name from a byte search); DocumentError if unreadable."""
    root = parse_xml(data, "XML document")
    if root.tag == CLINICAL_DOCUMENT:
        return True
    return root.tag in SELF_DISPLAYING and next(root.iter(CLINICAL_DOCUMENT), None) is not None


def clinical_document(root: Element) -> Element:
    """The ClinicalDocument: the root, or the one a self-displaying document embeds."""
    if root.tag == CLINICAL_DOCUMENT:
        return root
    if root.tag not in SELF_DISPLAYING:
        raise DocumentError("not a CDA document (no hl7:ClinicalDocument root)")
    embedded = list(root.iter(CLINICAL_DOCUMENT))
    if len(embedded) != 1:
        raise DocumentError(
            f"a self-displaying CDA must embed one hl7:ClinicalDocument ({len(embedded)} found)"
        )
    return embedded[0]


def _author(root: Element) -> Author | None:
    assigned = root.find("cda:author/cda:assignedAuthor", NS)
    if assigned is None:
        return None
    national_id = ""
    for ident in assigned.findall("cda:id", NS):
        if _attr(ident, "root") == OID_NATIONAL_ID or not national_id:
            national_id = _attr(ident, "extension")
    name = assigned.find("cda:assignedPerson/cda:name", NS)
    specialty = assigned.find("cda:code", NS)
    organization = assigned.find("cda:representedOrganization/cda:name", NS)
    return Author(
        national_id=national_id,
        family=_text(name.find("cda:family", NS)) if name is not None else "",
        given=_text(name.find("cda:given", NS)) if name is not None else "",
        institution=_text(organization),
        specialty=_attr(specialty, "code"),
    )


def confidentiality_of(data: bytes) -> str:
    """The `confidentialityCode/@code` of a CDA (plain or self-displaying), its INS not
    checked (what the delivery pipeline needs); DocumentError if unreadable."""
    root = clinical_document(parse_xml(data, "CDA document"))
    return _attr(root.find("cda:confidentialityCode", NS), "code")


def require_ins(header: CDAHeader) -> PatientId:
    """The document's INS, or MissingINS (903)."""
    if header.patient is None:
        raise MissingINS("the CDA carries no INS in recordTarget/patientRole/id")
    return header.patient
