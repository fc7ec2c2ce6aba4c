"""Builders of CDA documents and IHE XDM archives following the ANS structure.

For the tests and `mss bench dmp`. The patient is an ANS test identity
(DOMAIN.md §6); the author a professional with a national id (IDNPS, OID
1.2.250.1.71.4.2.1). The builders take keyword overrides so that tests can
break one thing at a time.
"""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile
from dataclasses import dataclass, field

INS = "279035121518989"  # ANS test identity (a woman born in March 1979)
INS_OID = "1.2.250.1.213.1.4.10"  # test NIR
AUTHOR_ID = "810003456789"


def cda(
    *,
    ins: str | None = INS,
    ins_oid: str = INS_OID,
    code: str = "11488-4",
    display: str = "Compte rendu de consultation",
    root: str = "1.2.250.1.999.1.1",
    extension: str = "CR-2026-0001",
    effective: str = "20261120103000+0100",
    confidentiality: str = "N",
    author_id: str = AUTHOR_ID,
) -> bytes:
    patient_id = f'<id extension="{ins}" root="{ins_oid}"/>' if ins is not None else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <realmCode code="FR"/>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <templateId root="1.2.250.1.213.1.1.1.1"/>
  <id root="{root}" extension="{extension}"/>
  <code code="{code}" codeSystem="2.16.840.1.113883.6.1" displayName="{display}"/>
  <title>{display}</title>
  <effectiveTime value="{effective}"/>
  <confidentialityCode code="{confidentiality}" codeSystem="2.16.840.1.113883.5.25"/>
  <languageCode code="fr-FR"/>
  <recordTarget><patientRole>
    <id extension="IPP-4242" root="1.2.250.1.999.2"/>
    {patient_id}
    <patient><name><family qualifier="BR">DE VINCI</family><given>RUTH</given></name>
      <administrativeGenderCode code="F" codeSystem="2.16.840.1.113883.5.1"/>
      <birthTime value="19790317"/></patient>
  </patientRole></recordTarget>
  <author><time value="{effective}"/><assignedAuthor>
    <id root="1.2.250.1.71.4.2.1" extension="{author_id}"/>
    <code code="G15_10/SM04" codeSystem="1.2.250.1.213.1.1.4.5" displayName="Cardiologie"/>
    <assignedPerson><name><prefix>Dr</prefix><family>DUPONT</family><given>Jean</given></name>
    </assignedPerson>
    <representedOrganization><name>CENTRE HOSPITALIER DE TEST</name></representedOrganization>
  </assignedAuthor></author>
  <custodian><assignedCustodian><representedCustodianOrganization>
    <id root="1.2.250.1.213.4.1" extension="DMP"/></representedCustodianOrganization>
  </assignedCustodian></custodian>
  <documentationOf><serviceEvent><effectiveTime>
    <low value="20261120090000+0100"/><high value="20261120100000+0100"/>
  </effectiveTime></serviceEvent></documentationOf>
  <component><nonXMLBody><text mediaType="text/plain">Patiente vue en consultation.</text>
  </nonXMLBody></component>
</ClinicalDocument>
""".encode()


@dataclass
class XDMDocument:
    content: bytes
    name: str = "DOC0001.XML"
    unique_id: str = "1.2.250.1.999.1.1^CR-2026-0001"
    class_code: str = "10"
    type_code: str = "11488-4"
    confidentiality: tuple[str, ...] = ("N",)
    mime_type: str = "text/xml"
    format_code: str = "urn:ihe:iti:xds-sd:text:2008"
    patient: str = f"{INS}^^^&{INS_OID}&ISO^NH"
    hash: str | None = None  # None: the right SHA-1
    size: int | None = None  # None: the right size
    title: str = "Compte rendu de consultation"
    entry_uuid: str | None = None  # the ExtrinsicObject id (default: Document01…)
    replaces: str | None = None  # entryUUID of the document this one replaces (RPLC)


@dataclass
class XDM:
    documents: list[XDMDocument] = field(default_factory=list)
    subset: str = "SUBSET01"
    submission_patient: str = f"{INS}^^^&{INS_OID}&ISO^NH"
    extra_entries: dict[str, bytes] = field(default_factory=dict)
    metadata_override: bytes | None = None

    def metadata(self) -> bytes:
        objects = "".join(_extrinsic(n, d) for n, d in enumerate(self.documents, 1))
        objects += "".join(
            f'<rim:Association id="as{n}" associationType="urn:ihe:iti:2007:AssociationType:RPLC"'
            f' sourceObject="{d.entry_uuid or f"Document{n:02d}"}" targetObject="{d.replaces}"/>'
            for n, d in enumerate(self.documents, 1)
            if d.replaces
        )
        return f"""<?xml version="1.0" encoding="UTF-8"?>
<lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
    xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">
 <rim:RegistryObjectList>
  <rim:RegistryPackage id="SubmissionSet01" objectType="urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:RegistryPackage">
   <rim:Slot name="submissionTime"><rim:ValueList><rim:Value>20261120101500</rim:Value></rim:ValueList></rim:Slot>
   <rim:Classification classificationScheme="urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d" classifiedObject="SubmissionSet01" nodeRepresentation="" id="sa01">
    <rim:Slot name="authorPerson"><rim:ValueList><rim:Value>{AUTHOR_ID}^DUPONT^Jean^^^^^^&amp;1.2.250.1.71.4.2.1&amp;ISO^D^^^IDNPS</rim:Value></rim:ValueList></rim:Slot>
   </rim:Classification>
   <rim:ExternalIdentifier identificationScheme="urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8" value="1.2.250.1.999.3.{uuid.uuid4().int % 10**12}" id="ei01" registryObject="SubmissionSet01"/>
   <rim:ExternalIdentifier identificationScheme="urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832" value="1.2.250.1.999" id="ei02" registryObject="SubmissionSet01"/>
   <rim:ExternalIdentifier identificationScheme="urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446" value="{self.submission_patient.replace("&", "&amp;")}" id="ei03" registryObject="SubmissionSet01"/>
  </rim:RegistryPackage>
  {objects}
 </rim:RegistryObjectList>
</lcm:SubmitObjectsRequest>
""".encode()

    def build(self) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("INDEX.HTM", "<html><body>IHE XDM</body></html>")
            archive.writestr("README.TXT", "Archive IHE XDM produite par un logiciel de test.")
            archive.writestr(
                f"IHE_XDM/{self.subset}/METADATA.XML", self.metadata_override or self.metadata()
            )
            for document in self.documents:
                archive.writestr(f"IHE_XDM/{self.subset}/{document.name}", document.content)
            for name, data in self.extra_entries.items():
                archive.writestr(name, data)
        return out.getvalue()


def _classification(scheme: str, obj: str, code: str, coding: str, n: str) -> str:
    return (
        f'<rim:Classification classificationScheme="urn:uuid:{scheme}" classifiedObject="{obj}" '
        f'nodeRepresentation="{code}" id="{n}">'
        f'<rim:Slot name="codingScheme"><rim:ValueList><rim:Value>{coding}</rim:Value>'
        f'</rim:ValueList></rim:Slot><rim:Name><rim:LocalizedString value="{code}"/></rim:Name>'
        "</rim:Classification>"
    )


def _slot(name: str, value: str) -> str:
    return f'<rim:Slot name="{name}"><rim:ValueList><rim:Value>{value}</rim:Value></rim:ValueList></rim:Slot>'


def _extrinsic(n: int, d: XDMDocument) -> str:
    obj = d.entry_uuid or f"Document{n:02d}"
    digest = d.hash if d.hash is not None else hashlib.sha1(d.content).hexdigest()
    size = d.size if d.size is not None else len(d.content)
    confidentiality = "".join(
        _classification("f4f85eac-e6cb-4883-b524-f2705394840f", obj, c,
                        "2.16.840.1.113883.5.25" if c in "NRV" else "1.2.250.1.213.1.1.4.13",
                        f"cc{n}{i}")
        for i, c in enumerate(d.confidentiality)
    )  # fmt: skip
    return f"""
  <rim:ExtrinsicObject id="{obj}" mimeType="{d.mime_type}" objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">
   {_slot("creationTime", "20261120093000")}
   {_slot("serviceStartTime", "20261120080000")}
   {_slot("serviceStopTime", "20261120090000")}
   {_slot("hash", digest)}
   {_slot("size", str(size))}
   {_slot("languageCode", "fr-FR")}
   {_slot("sourcePatientId", "IPP-4242^^^&amp;1.2.250.1.999.2&amp;ISO^PI")}
   {_slot("URI", d.name)}
   <rim:Name><rim:LocalizedString value="{d.title}"/></rim:Name>
   <rim:Classification classificationScheme="urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d" classifiedObject="{obj}" nodeRepresentation="" id="au{n}">
    {_slot("authorPerson", f"{AUTHOR_ID}^DUPONT^Jean^^^^^^&amp;1.2.250.1.71.4.2.1&amp;ISO^D^^^IDNPS")}
    {_slot("authorInstitution", "CENTRE HOSPITALIER DE TEST^^^^^&amp;1.2.250.1.71.4.2.2&amp;ISO^IDNST^^^1750000001")}
    {_slot("authorSpecialty", "G15_10/SM04^Cardiologie^1.2.250.1.213.1.1.4.5")}
   </rim:Classification>
   {_classification("41a5887f-8865-4c09-adf7-e362475b143a", obj, d.class_code, "1.2.250.1.213.1.1.4.1", f"cl{n}")}
   {confidentiality}
   {_classification("a09d5840-386c-46f2-b5ad-9c3699a4309d", obj, d.format_code, "1.3.6.1.4.1.19376.1.2.3", f"fo{n}")}
   {_classification("f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1", obj, "SA01", "1.2.250.1.71.4.2.4", f"hf{n}")}
   {_classification("cccf5598-8b07-4b77-a05e-ae952c785ead", obj, "ETABLISSEMENT", "1.2.250.1.213.1.1.4.9", f"ps{n}")}
   {_classification("f0306f51-975f-434e-a61c-c59651d33983", obj, d.type_code, "2.16.840.1.113883.6.1", f"ty{n}")}
   <rim:ExternalIdentifier identificationScheme="urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427" value="{d.patient.replace("&", "&amp;")}" id="pi{n}" registryObject="{obj}"/>
   <rim:ExternalIdentifier identificationScheme="urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab" value="{d.unique_id}" id="ui{n}" registryObject="{obj}"/>
  </rim:ExtrinsicObject>"""
