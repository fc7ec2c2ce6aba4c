"""The ANS's public CDA examples deposit, bare and wrapped in an IHE_XDM.ZIP (issue 14).

The examples (`ansforge/TestContenuCDA-3-0`, `ExemplesCDA/`) carry no licence that
lets us vendor them: the test over the whole set runs when `MSS_ANS_CDA_DIR` names a
checkout (the folder holding `ExemplesCDA/`, or `ExemplesCDA/` itself). Each example
goes over real SMTP to the patient its own recordTarget names (created here), once as
a bare CDA and once inside an XDM whose METADATA names the same patient, as sending
software does. An example whose INS fails its control key is refused with 905 (INS
incomplet), and only such an example. At the set's commit 7cd489b3 (2025-02-19):
94 files, 168 of 188 deposits; the other 20 are the 10 examples whose INS fails its
key (CSE-*, OBP-SEM, OBP-SNE, SDM-MR nouveau-né…), refused with 905 both ways.

Always run: a self-displaying CDA ("auto-présentable", an XSL stylesheet embedding
the CDA, as in the ANS set) deposits both ways.
"""

from __future__ import annotations

import asyncio
import os
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest

from mss.dmp.cda import read_cda_header
from mss.dmp.errors import DocumentError
from mss.dmp.xdm import parse_xml
from mss.store import outbox
from mss.testing.xdmgen import INS, XDM, XDMDocument, cda

from .harness import Running

PRO = "jean.dupont@pro.mssante.test"
INS_OIDS = ("1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.10")
HL7 = "{urn:hl7-org:v3}"


def _examples() -> list[Path]:
    where = os.environ.get("MSS_ANS_CDA_DIR")
    if not where:
        return []
    folder = Path(where)
    folder = folder / "ExemplesCDA" if (folder / "ExemplesCDA").is_dir() else folder
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".xml")


def _record_target_ins(data: bytes) -> str:
    """The INS the document names, read leniently (its control key not checked)."""
    for ident in parse_xml(data, "CDA").iter(f"{HL7}id"):
        if ident.get("root") in INS_OIDS and len(ident.get("extension", "")) == 15:
            return f"{ident.get('extension')}^^^&{ident.get('root')}&ISO^NH"
    raise AssertionError("no INS in the example")


def _expected(data: bytes) -> str:
    try:
        read_cda_header(data)
    except DocumentError as exc:
        return f"{exc.mdn_code} {exc}"  # only a bad INS key is allowed: see the test
    return "deposited 1 document(s)"


def _mail(name: str, attachment: bytes, to: str, *, xdm: bool, n: int) -> bytes:
    mail = EmailMessage(policy=default)
    mail["From"], mail["To"] = PRO, to
    mail["Subject"] = f"XDM/1.0/DDM+{name[:60]}"
    mail["Message-ID"] = f"<ans-{n}-{'xdm' if xdm else 'cda'}@pro.mssante.test>"
    mail.set_content("Document de test de l'ANS.")
    if xdm:
        mail.add_attachment(attachment, maintype="application", subtype="zip",
                            filename="IHE_XDM.ZIP")  # fmt: skip
    else:
        mail.add_attachment(attachment, maintype="text", subtype="xml", filename=name)
    return mail.as_bytes()


def _xdm(data: bytes) -> bytes:
    """The XDM a sending software builds from the CDA's header (DOMAIN.md §4)."""
    patient = _record_target_ins(data)
    try:
        header = read_cda_header(data)
    except DocumentError:
        return XDM([XDMDocument(data, patient=patient)], submission_patient=patient).build()
    document = XDMDocument(
        data, unique_id=header.unique_id, patient=patient,
        type_code=header.type_code.code if header.type_code else "11488-4",
        confidentiality=(header.confidentiality.code,) if header.confidentiality else ("N",),
    )  # fmt: skip
    return XDM([document], submission_patient=patient).build()


async def _results(mss: Running, count: int) -> dict[int, str]:
    """The results of the deposit rows, by row id, once all `count` are done."""
    for _ in range(3000):
        rows = await mss.store.read(lambda c: outbox.list_items(c, kinds=["dmp_deposit"]))
        if len(rows) == count and all(r.status == "done" for r in rows):
            return {r.id: r.result or "" for r in rows}
        await asyncio.sleep(0.1)
    raise AssertionError("the deposit runner did not finish")


def _recipient(data: bytes) -> str:
    """The patient the document names; the test identity when its INS is invalid (no
    such patient can exist: the deposit must then answer 905)."""
    ins = _record_target_ins(data).partition("^")[0]
    return ins if _expected(data).startswith("deposited") else INS


async def _send_all(mss: Running, named: list[tuple[str, bytes]]) -> list[str]:
    """Each document bare then in an XDM, to the patient it names; the rows' results."""
    for ins in {_recipient(d) for _, d in named}:
        await mss.add_patient(ins)
    n = 0
    for name, data in named:
        to = f"{_recipient(data)}@patient.mssante.fr"
        for wrapped in (False, True):
            n += 1
            body = _xdm(data) if wrapped else data
            await mss.submit(PRO, _mail(name, body, to, xdm=wrapped, n=n), [to])
    results = await _results(mss, n)
    return [results[k] for k in sorted(results)]


@pytest.fixture
async def clinic(mss: Running) -> Running:
    await mss.add_pro(PRO, national_id="810003456789", name="Jean DUPONT")
    return mss


def self_displaying(document: bytes) -> bytes:
    """A CDA "auto-présentable": an XSL stylesheet whose data element holds the CDA."""
    _, _, body = document.partition(b"?>")
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"'
        b' xmlns:data="urn:exemple:data" xmlns:c="urn:hl7-org:v3">\n<data:Contenu>'
        + body
        + b'</data:Contenu>\n<xsl:template match="/"><html><body>CR</body></html>'
        b"</xsl:template>\n</xsl:stylesheet>\n"
    )


async def test_every_ans_cda_example_deposits_bare_and_in_an_xdm(clinic: Running) -> None:
    examples = _examples()
    if not examples:
        pytest.skip("MSS_ANS_CDA_DIR names no checkout of ansforge/TestContenuCDA-3-0")
    named = [(p.name, p.read_bytes()) for p in examples]
    results = await _send_all(clinic, named)
    expected = [_expected(d) for _, d in named for _wrapped in (False, True)]
    for (name, _), got, want in zip(
        [x for x in named for _ in (0, 1)], results, expected, strict=True
    ):
        if want.startswith("905 ") and "control key" in want:
            assert "DMPInvalidDocument 905" in got, (name, got)
        else:
            assert got == want, (name, got)
    passed = sum(r == "deposited 1 document(s)" for r in results)
    print(f"ANS examples: {len(named)} files, {passed}/{len(results)} deposits")


async def test_a_self_displaying_cda_deposits_bare_and_in_an_xdm(clinic: Running) -> None:
    """The ANS's "auto-présentable" form (906 before): its embedded CDA gives the header,
    the file as sent is what the DMP keeps."""
    document = self_displaying(cda())
    assert read_cda_header(document).patient is not None
    results = await _send_all(clinic, [("CR-auto-presentable.xml", document)])
    assert results == ["deposited 1 document(s)", "deposited 1 document(s)"]
    assert INS in _record_target_ins(document)


def test_a_self_displaying_cda_must_embed_exactly_one_document() -> None:
    """An XHTML page embedding the CDA reads as one; two embedded documents, or a root
    that is neither a CDA nor a self-displaying form, are refused (906)."""
    _, _, body = cda().partition(b"?>")
    page = b'<html xmlns="http://www.w3.org/1999/xhtml"><body>' + body + b"</body></html>"
    assert read_cda_header(page).unique_id == "1.2.250.1.999.1.1^CR-2026-0001"
    twice = self_displaying(cda()).replace(b"</data:Contenu>", body + b"</data:Contenu>")
    with pytest.raises(DocumentError, match="one hl7:ClinicalDocument") as info:
        read_cda_header(twice)
    assert info.value.mdn_code == 906
    with pytest.raises(DocumentError, match="not a CDA"):
        read_cda_header(b"<other>" + body + b"</other>")
