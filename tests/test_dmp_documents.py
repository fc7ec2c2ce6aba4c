"""Reading document mail attachments: IHE XDM archives and CDA headers (DOMAIN.md §4).

Every archive is hostile input: each guard has a test that builds the attack
(a `..` path, a zip bomb, entity expansion…) and expects a DocumentError, and
a fuzz test checks that no input makes the reader fail any other way.
"""

from __future__ import annotations

import contextlib
import io
import zipfile

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mss.dmp.cda import read_cda_header, require_ins
from mss.dmp.errors import DocumentError, IncompleteINS, MissingINS
from mss.dmp.xdm import Limits, read_xdm
from mss.testing.xdmgen import AUTHOR_ID, INS, INS_OID, XDM, XDMDocument, cda


def _xdm(*documents: XDMDocument, **kwargs: object) -> bytes:
    return XDM(documents=list(documents) or [XDMDocument(cda())], **kwargs).build()  # type: ignore[arg-type]


def test_xdm_documents_and_their_metadata_are_read() -> None:
    pdf = XDMDocument(b"%PDF-1.4 compte rendu", name="DOC0002.PDF", mime_type="application/pdf",
                      unique_id="1.2.250.1.999.1.2", format_code="urn:ihe:iti:xds-sd:pdf:2008",
                      confidentiality=("N", "MASQUE_PS"))  # fmt: skip
    package = read_xdm(_xdm(XDMDocument(cda()), pdf))
    assert package.submission.patient is not None and package.submission.patient.value == INS
    assert package.submission.authors[0].national_id == AUTHOR_ID
    first, second = package.documents
    meta = first.metadata
    assert meta.unique_id == "1.2.250.1.999.1.1^CR-2026-0001"
    assert (meta.class_code.code, meta.type_code.code) == ("10", "11488-4")  # type: ignore[union-attr]
    assert meta.patient is not None and (meta.patient.value, meta.patient.oid) == (INS, INS_OID)
    assert meta.authors[0].family == "DUPONT" and meta.authors[0].national_id == AUTHOR_ID
    assert meta.creation_time is not None and meta.creation_time.isoformat().startswith(
        "2026-11-20T09:30"
    )
    assert first.content == cda() and first.path == "IHE_XDM/SUBSET01/DOC0001.XML"
    assert second.metadata.confidentiality_codes == {"N", "MASQUE_PS"}
    assert second.content.startswith(b"%PDF")


def test_a_document_whose_sha1_differs_from_its_metadata_is_refused() -> None:
    with pytest.raises(DocumentError, match="SHA-1"):
        read_xdm(_xdm(XDMDocument(cda(), hash="0" * 40)))


def test_a_document_whose_size_differs_from_its_metadata_is_refused() -> None:
    with pytest.raises(DocumentError, match="the metadata says 12"):
        read_xdm(_xdm(XDMDocument(cda(), size=12)))


def test_a_path_with_dotdot_is_refused() -> None:
    with pytest.raises(DocumentError, match=r"'\.\.'"):
        read_xdm(_xdm(extra_entries={"IHE_XDM/../../etc/passwd": b"x"}))


def test_an_absolute_path_is_refused() -> None:
    with pytest.raises(DocumentError, match="absolute path"):
        read_xdm(_xdm(extra_entries={"/etc/passwd": b"x"}))


def test_a_zip_bomb_is_refused_before_it_is_inflated() -> None:
    with pytest.raises(DocumentError, match="compression ratio"):
        read_xdm(_xdm(extra_entries={"IHE_XDM/SUBSET01/BOMB.XML": b"\0" * 20_000_000}))


def test_too_many_entries_or_too_many_bytes_are_refused() -> None:
    many = {f"IHE_XDM/SUBSET01/F{n}.TXT": b"x" for n in range(40)}
    with pytest.raises(DocumentError, match="entries"):
        read_xdm(_xdm(extra_entries=many), Limits(max_entries=20))
    with pytest.raises(DocumentError, match="expands to over"):
        read_xdm(_xdm(), Limits(max_total_bytes=1000))


def test_xml_entity_expansion_is_refused() -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        b"<lcm:SubmitObjectsRequest xmlns:lcm='urn:x'>&lol2;</lcm:SubmitObjectsRequest>"
    )
    with pytest.raises(DocumentError, match="forbidden XML"):
        read_xdm(_xdm(metadata_override=laughs))


def test_an_external_entity_is_refused() -> None:
    xxe = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
    with pytest.raises(DocumentError, match="forbidden XML"):
        read_cda_header(xxe)


def test_not_a_zip_and_no_metadata_are_clear_errors() -> None:
    with pytest.raises(DocumentError, match="not a readable zip"):
        read_xdm(b"PK\x03\x04 broken")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("README.TXT", "rien")
    with pytest.raises(DocumentError, match=r"METADATA\.XML"):
        read_xdm(out.getvalue())


def test_an_ins_with_a_bad_key_is_incomplete_905() -> None:
    bad = XDMDocument(cda(), patient=f"279035121518988^^^&{INS_OID}&ISO^NH")
    with pytest.raises(IncompleteINS) as info:
        read_xdm(_xdm(bad))
    assert info.value.mdn_code == 905


def test_cda_header_gives_the_metadata() -> None:
    header = read_cda_header(cda())
    assert header.unique_id == "1.2.250.1.999.1.1^CR-2026-0001"
    assert header.type_code is not None and header.type_code.code == "11488-4"
    assert header.title == "Compte rendu de consultation"
    assert header.creation_time is not None and header.creation_time.year == 2026
    assert header.patient is not None and header.patient.value == INS
    assert header.author is not None and header.author.national_id == AUTHOR_ID
    assert header.author.institution == "CENTRE HOSPITALIER DE TEST"
    assert header.service_start is not None and header.service_stop is not None


def test_cda_without_ins_is_missing_ins_903() -> None:
    header = read_cda_header(cda(ins=None))
    with pytest.raises(MissingINS) as info:
        require_ins(header)
    assert info.value.mdn_code == 903


def test_a_document_that_is_not_cda_is_refused() -> None:
    with pytest.raises(DocumentError, match="not a CDA"):
        read_cda_header(b"<html><body>bonjour</body></html>")
    with pytest.raises(DocumentError, match="not well-formed"):
        read_cda_header(b"<ClinicalDocument")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_fuzz_random_bytes_never_crash_the_xdm_reader(data: bytes) -> None:
    with contextlib.suppress(DocumentError):
        read_xdm(data)


VALID = XDM(documents=[XDMDocument(cda())]).build()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), max_size=8))
@example(flips=[(2802, 1)])  # zipfile: ValueError, a negative seek (found by CI, stop 23)
@example(flips=[(2625, 0)])  # zipfile: IndexError, an entry without a name
def test_fuzz_corrupted_archives_are_read_or_refused_cleanly(flips: list[tuple[int, int]]) -> None:
    data = bytearray(VALID)
    for at, value in flips:
        data[at] = value
    with contextlib.suppress(DocumentError):
        read_xdm(bytes(data))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_fuzz_random_bytes_never_crash_the_cda_reader(data: bytes) -> None:
    with contextlib.suppress(DocumentError):
        read_cda_header(data)


ANS_STYLE_CDA = """<?xml version="1.0" encoding="UTF-8"?>
<?xml-stylesheet type="text/xsl" href="FeuilleStyle-CDA.xsl"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xmlns:lab="urn:oid:1.3.6.1.4.1.19376.1.3.2">
  <realmCode code="FR"/>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <templateId root="2.16.840.1.113883.2.8.2.1"/>
  <templateId root="1.2.250.1.213.1.1.1.1"/>
  <id root="1.2.250.1.213.1.1.9" extension="CRBIO-2026-000042"/>
  <code code="11502-2" codeSystem="2.16.840.1.113883.6.1" codeSystemName="LOINC"
        displayName="CR d'examens biologiques"/>
  <title>Compte rendu d'examens de biologie médicale</title>
  <effectiveTime value="20261121083000+0100"/>
  <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>
  <languageCode code="fr-FR"/>
  <setId root="1.2.250.1.213.1.1.9" extension="CRBIO-SET-42"/>
  <versionNumber value="1"/>
  <recordTarget><patientRole>
    <id root="1.2.250.1.71.4.2.7" extension="IPP-000042"/>
    <id root="1.2.250.1.213.1.4.8" extension="277076322082910"/>
    <addr><city>PARIS</city></addr>
    <patient>
      <name><given>ALINE</given><family qualifier="BR">TCHITCHI</family></name>
      <administrativeGenderCode code="F" codeSystem="2.16.840.1.113883.5.1"/>
      <birthTime value="19770704"/>
    </patient>
  </patientRole></recordTarget>
  <author><time value="20261121083000+0100"/><assignedAuthor>
    <id nullFlavor="UNK"/>
    <id root="1.2.250.1.71.4.2.1" extension="810000012345"/>
    <code code="G15_10/SM26" displayName="Qualifié en médecine générale"
          codeSystem="1.2.250.1.213.1.1.4.5"/>
    <assignedPerson><name><prefix>Dr</prefix><given>Paul</given><family>BIOLOGISTE</family>
    </name></assignedPerson>
    <representedOrganization><name>LABORATOIRE D'ANALYSES DU CENTRE</name>
    </representedOrganization>
  </assignedAuthor></author>
  <documentationOf><serviceEvent><effectiveTime><low value="20261120"/></effectiveTime>
  </serviceEvent></documentationOf>
  <component><structuredBody><component><section>
    <code code="18719-5" codeSystem="2.16.840.1.113883.6.1"/><title>Biochimie</title>
    <text>Glycémie à jeun : 5,1 mmol/l</text>
  </section></component></structuredBody></component>
</ClinicalDocument>
""".encode()


def test_cda_header_of_an_ans_style_document() -> None:
    """The layout of the ANS example documents: a stylesheet instruction, namespace
    prefixes, the INS after an IPP, an author with a null id before the RPPS one."""
    header = read_cda_header(ANS_STYLE_CDA)
    assert header.unique_id == "1.2.250.1.213.1.1.9^CRBIO-2026-000042"
    assert header.type_code is not None and header.type_code.code == "11502-2"
    assert header.patient is not None and header.patient.value == "277076322082910"
    assert header.author is not None and header.author.national_id == "810000012345"
    assert header.author.family == "BIOLOGISTE"
    assert header.service_start is not None and header.service_stop is None
