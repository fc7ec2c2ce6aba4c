"""Documents mailed to a patient reach the patient's DMP (outbox), with an MDN when asked.

End to end over real SMTP (submission, STARTTLS): a professional sends the
patient a mail with an `IHE_XDM.ZIP`; after the commit the deposit runner
puts the documents in the DMP; another professional finds them under the
rules; the MDN comes back to the sender's mailbox.
"""

from __future__ import annotations

import asyncio
import base64
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from sqlalchemy import update

from mss.dmp import service
from mss.dmp.access import Mode, Professional
from mss.dmp.service import Search, Settings
from mss.store import outbox
from mss.store.models import outbox_table
from mss.testing.xdmgen import INS, XDM, XDMDocument, cda

from .harness import Running, running

PRO = "jean.dupont@pro.mssante.test"
PATIENT = f"{INS}@patient.mssante.fr"
OTHER = Professional("810001122334", "10", "Dr DOE-MARTIN")
SUBJECT = "XDM/1.0/DDM+Compte rendu de consultation DE VINCI Ruth 17/03/1979"


@pytest.fixture
async def clinic(mss: Running) -> Running:
    await mss.add_pro(PRO, national_id="810003456789", name="Jean DUPONT")
    await mss.add_patient(INS, family="DE VINCI", given="RUTH", birth_date="1979-03-17")
    return mss


def document_mail(xdm: bytes | None = None, *, mdn: bool = True, pdf: bool = True) -> bytes:
    mail = EmailMessage(policy=default)
    mail["From"] = PRO
    mail["To"] = PATIENT
    mail["Subject"] = SUBJECT
    mail["Message-ID"] = "<cr-0001@pro.mssante.test>"
    mail["Date"] = "Fri, 20 Nov 2026 10:30:00 +0100"
    if mdn:
        mail["Disposition-Notification-To"] = PRO
    mail["X-MSS-CODECDA"] = "11488-4"
    mail["X-MSS-INS"] = "O"
    mail.set_content("Bonjour, veuillez trouver le compte rendu de votre consultation.")
    if xdm is not None:
        mail.add_attachment(xdm, maintype="application", subtype="zip", filename="IHE_XDM.ZIP")
    if pdf:
        mail.add_attachment(b"%PDF-1.4 rendu", maintype="application", subtype="pdf",
                            filename="compte-rendu.pdf")  # fmt: skip
    return mail.as_bytes()


async def _drain(mss: Running, kind: str = "dmp_deposit") -> list[str]:
    """Wait for the outbox runner to finish the rows of `kind`; return their results."""
    for _ in range(200):
        rows = await mss.store.read(lambda c: outbox.list_items(c, kinds=[kind]))
        if rows and all(r.status == "done" for r in rows):
            return [r.result or "" for r in rows]
        await asyncio.sleep(0.05)
    raise AssertionError(f"the outbox runner did not finish the {kind} rows")


async def mdns(mss: Running, to: str = PRO) -> list[bytes]:
    """The MDNs in `to`'s INBOX, once the `mdn` rows the deposits added are sent (they
    commit with the deposit: after `_drain`, every one to come exists)."""
    for _ in range(200):
        rows = await mss.store.read(lambda c: outbox.list_items(c, kinds=["mdn"]))
        if all(r.status != "pending" for r in rows):
            break
        await asyncio.sleep(0.05)
    return [m for m in await mss.inbox(to) if b"disposition-notification" in m]


def _again(kind: str) -> Any:
    """The rows of `kind` as if a crash had stopped the process before their end."""
    o = outbox_table.c
    pending = {"status": "pending", "due_at": 0, "lease_owner": None, "result": None}
    return lambda tx: tx.conn.execute(update(outbox_table).where(o.kind == kind).values(pending))


async def test_documents_of_a_mail_reach_the_dmp_and_an_mdn_comes_back(clinic: Running) -> None:
    reply = await clinic.submit(PRO, document_mail(XDM([XDMDocument(cda())]).build()), [PATIENT])
    assert reply.code == 250
    assert await _drain(clinic) == ["deposited 1 document(s)"]
    settings = Settings()
    await clinic.store.write(lambda tx: service.authorize(tx, settings, INS, OTHER))
    found = await clinic.store.write(
        lambda tx: service.search_documents(tx, settings, INS, OTHER, Mode.NORMAL, Search())
    )
    [document] = found
    assert document["unique_id"] == "1.2.250.1.999.1.1^CR-2026-0001"
    assert document["author"]["national_id"] == "810003456789"
    assert document["type_code"] == "11488-4"
    [mdn] = await mdns(clinic)
    parsed = message_from_bytes(mdn, policy=default)
    assert parsed["Subject"].startswith("Accusé de traitement")
    assert b"Disposition: automatic-action/MDN-sent-automatically; processed" in mdn
    assert b"Original-Message-ID: <cr-0001@pro.mssante.test>" in mdn
    assert len(await clinic.inbox(PATIENT)) == 1  # the mail itself reached the patient


async def test_an_xdm_of_another_patient_is_refused_with_mdn_904(clinic: Running) -> None:
    other = "188102B17295165^^^&1.2.250.1.213.1.4.10&ISO^NH"
    xdm = XDM([XDMDocument(cda(), patient=other)], submission_patient=other).build()
    await clinic.submit(PRO, document_mail(xdm), [PATIENT])
    [result] = await _drain(clinic)
    assert "904" in result
    count = await clinic.store.read(lambda c: service.count_documents(c, INS))
    assert count == 0
    [mdn] = await mdns(clinic)
    subject = message_from_bytes(mdn, policy=default)["Subject"]
    assert subject.startswith("[KO Intégration système !][904] XDM/1.0/DDM")
    assert b"processed/Error: 904^INS du document diff" in mdn


async def test_a_mail_with_a_document_invisible_to_the_patient_is_refused(clinic: Running) -> None:
    xdm = XDM([XDMDocument(cda(), confidentiality=("N", "INVISIBLE_PATIENT"))]).build()
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await clinic.submit(PRO, document_mail(xdm), [PATIENT])
    assert info.value.code == 550 and "INVISIBLE_PATIENT" in info.value.message
    assert await clinic.inbox(PATIENT) == []


def _hidden(xdm: bytes, trick: str) -> bytes:
    """A mail whose INVISIBLE_PATIENT XDM only some readers find (the others see text)."""
    zipped = base64.encodebytes(xdm)
    part = (
        b"Content-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="IHE_XDM.ZIP"\r\n\r\n' + zipped
    )
    head = f"From: {PRO}\r\nTo: {PATIENT}\r\nSubject: {SUBJECT}\r\nMIME-Version: 1.0\r\n"
    if trick == "two boundaries":  # the standard library takes the first, we took the last
        return (
            (
                head + 'Content-Type: multipart/mixed; boundary="A"; boundary="B"\r\n\r\n--A\r\n'
            ).encode()
            + part
            + b"\r\n--A--\r\n"
        )
    if trick == "encoded boundary":  # RFC 2231
        return (
            (
                head + "Content-Type: multipart/mixed; boundary*0=A; boundary*1=B\r\n\r\n--AB\r\n"
            ).encode()
            + part
            + b"\r\n--AB--\r\n"
        )
    if trick == "deep":  # nested beyond MAX_DEPTH
        opening = "".join(f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'
                          for i in range(60))  # fmt: skip
        return (head + opening).encode() + part
    # "many": more than MAX_PARTS parts before the XDM
    filler = "".join("--B\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(5100))
    return (head + 'Content-Type: multipart/mixed; boundary="B"\r\n\r\n' + filler
            + "--B\r\n").encode() + part + b"\r\n--B--\r\n"  # fmt: skip


@pytest.mark.parametrize("trick", ["two boundaries", "encoded boundary", "deep", "many"])
async def test_a_document_invisible_to_the_patient_cannot_hide_in_the_structure(
    clinic: Running, trick: str
) -> None:
    """Duplicate or RFC 2231 boundaries, nesting past the parser's depth, thousands of
    parts: the mail to the patient is refused (fail closed), never delivered."""
    xdm = XDM([XDMDocument(cda(), confidentiality=("N", "INVISIBLE_PATIENT"))]).build()
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await clinic.submit(PRO, _hidden(xdm, trick), [PATIENT])
    assert info.value.code == 550
    assert await clinic.inbox(PATIENT) == []


async def test_a_pdf_alone_is_deposited_with_default_metadata(clinic: Running) -> None:
    await clinic.submit(PRO, document_mail(None, mdn=False), [PATIENT])
    assert await _drain(clinic) == ["deposited 1 document(s)"]
    docs = await clinic.store.write(lambda tx: service.patient_documents(tx, INS))
    [pdf] = docs
    assert (pdf["class_code"], pdf["type_code"], pdf["mime_type"]) == (
        "10", "11488-4", "application/pdf",
    )  # fmt: skip
    assert pdf["title"] == SUBJECT and pdf["unique_id"].startswith("2.25.")


def test_a_pdf_title_is_the_subject_with_the_file_name_when_several() -> None:
    """Issue 17: the README promises the subject (the professional's words)."""
    from mss.dmp.mail import pdf_title

    assert pdf_title("Compte rendu", "cr.pdf", 1) == "Compte rendu"
    assert pdf_title("Compte rendu", "cr.pdf", 2) == "Compte rendu (cr.pdf)"
    assert pdf_title("", "cr.pdf", 1) == "cr.pdf"
    assert pdf_title("", None, 1) == "Document"


async def test_a_crash_before_the_deposit_deposits_once_at_the_next_run(clinic: Running) -> None:
    """The outbox row commits with the mail: processing it again deposits nothing twice."""
    assert clinic.app.mail is not None
    await clinic.submit(PRO, document_mail(XDM([XDMDocument(cda())]).build(), mdn=False), [PATIENT])
    await _drain(clinic)
    await clinic.store.write(_again("dmp_deposit"))
    await clinic.app.mail.runner.run_once("dmp_deposit")
    assert await _drain(clinic) == ["deposited 1 document(s)"]  # no error
    assert await clinic.store.read(lambda c: service.count_documents(c, INS)) == 1


async def test_a_professional_of_another_operator_deposits_through_the_mx(
    clinic: Running, tmp_path: Any
) -> None:
    """The same path through the MX: the author's national id and profession come from
    the annuaire, where the other operator's mailbox is published."""
    from mss.annuaire.formats import MSSANTE_COLUMNS
    from mss.annuaire.importer import import_files

    from .test_patient_rules import PEER_DOMAIN

    sender = f"dr.house@{PEER_DOMAIN}"
    header = "|".join(h for _, h in MSSANTE_COLUMNS)
    line = (f"PER|{sender}|8|10001234567|810001234567||||DR|HOUSE|Gregory|C|Civil|40"
            "|Chirurgien-Dentiste" + "|" * 14 + "75001||FRANCE")  # fmt: skip
    extraction = tmp_path / "Extraction_Correspondance_MSSante_1.txt"
    extraction.write_text(f"{header}\n{line}\n", encoding="utf-8")
    import_files(clinic.store.db, [extraction])
    await clinic.trust(PEER_DOMAIN)
    raw = document_mail(XDM([XDMDocument(cda())]).build(), mdn=False).replace(
        PRO.encode(), sender.encode()
    )
    tls = clinic.client_tls(*clinic.pki.issue_operator("mx.autre.mssante.test", [PEER_DOMAIN]))
    client = clinic.smtp("mx", tls_context=tls)
    await client.connect()
    try:
        await client.starttls()
        await client.sendmail(sender, [PATIENT], raw)
    finally:
        client.close()
    assert await _drain(clinic) == ["deposited 1 document(s)"]
    [doc] = await clinic.store.write(lambda tx: service.patient_documents(tx, INS))
    assert doc["author"] == {"national_id": "810001234567", "name": "Gregory HOUSE",
                             "profession": "40"}  # fmt: skip


async def test_a_new_version_by_mail_replaces_the_previous_and_keeps_it(clinic: Running) -> None:
    """An XDM whose RPLC association names an earlier document's entryUUID: version 2,
    the first one kept as history (superseded)."""
    first = XDMDocument(cda(), entry_uuid="urn:uuid:0b8f8a4e-1d5c-4f3e-9a77-3c2d1e0f0001")
    await clinic.submit(PRO, document_mail(XDM([first]).build(), mdn=False), [PATIENT])
    await _drain(clinic)
    second = XDMDocument(
        cda(extension="CR-2026-0001-v2"), unique_id="1.2.250.1.999.1.1^CR-2026-0001-v2",
        entry_uuid="urn:uuid:0b8f8a4e-1d5c-4f3e-9a77-3c2d1e0f0002",
        replaces="urn:uuid:0b8f8a4e-1d5c-4f3e-9a77-3c2d1e0f0001",
    )  # fmt: skip
    mail = document_mail(XDM([second]).build(), mdn=False).replace(b"cr-0001@", b"cr-0002@")
    await clinic.submit(PRO, mail, [PATIENT])
    await _drain(clinic)
    settings = Settings()
    await clinic.store.write(lambda tx: service.authorize(tx, settings, INS, OTHER))
    everything = await clinic.store.write(lambda tx: service.search_documents(
        tx, settings, INS, OTHER, Mode.NORMAL, Search(include_superseded=True)))  # fmt: skip
    versions = {d["unique_id"]: (d["version"], d["superseded_by"]) for d in everything}
    v2_id = next(d["id"] for d in everything if d["version"] == 2)
    assert versions == {
        "1.2.250.1.999.1.1^CR-2026-0001": (1, v2_id),
        "1.2.250.1.999.1.1^CR-2026-0001-v2": (2, None),
    }


async def test_an_mdn_not_yet_sent_is_sent_at_the_next_run(clinic: Running) -> None:
    """The MDN to send commits with the deposit; a crash before it left is made good."""
    assert clinic.app.mail is not None
    await clinic.submit(PRO, document_mail(XDM([XDMDocument(cda())]).build()), [PATIENT])
    await _drain(clinic)
    await _drain(clinic, "mdn")
    await clinic.store.write(_again("mdn"))  # the crash
    await clinic.app.mail.runner.run_once("mdn")
    await _drain(clinic, "mdn")
    mdns = [m for m in await clinic.inbox(PRO) if b"disposition-notification" in m]
    assert len(mdns) == 2  # sent again, never lost (at least once)
    assert await clinic.store.read(lambda c: service.count_documents(c, INS)) == 1


def _cda_mail(document: bytes, message_id: str) -> bytes:
    mail = EmailMessage(policy=default)
    mail["From"], mail["To"], mail["Subject"] = PRO, PATIENT, SUBJECT
    mail["Message-ID"] = message_id
    mail.set_content("Compte rendu en CDA.")
    mail.add_attachment(document, maintype="text", subtype="xml", filename="cda.xml")
    return mail.as_bytes()


async def test_a_mailbox_without_a_national_id_deposits_on_postgresql_too(
    instance: Path, postgres_url: str
) -> None:
    """Its address names the author (longer than a national id: PostgreSQL refused it)."""
    async with running(instance, env={"MSS_STORAGE_URL": postgres_url}) as mss:
        await mss.add_pro(PRO, name="Jean DUPONT")  # no RPPS
        await mss.add_patient(INS, family="DE VINCI", given="RUTH", birth_date="1979-03-17")
        await mss.submit(PRO, document_mail(None, mdn=False), [PATIENT])
        assert await _drain(mss) == ["deposited 1 document(s)"]
        [pdf] = await mss.store.write(lambda tx: service.patient_documents(tx, INS))
    assert pdf["author"]["national_id"] == PRO


async def test_a_retried_mail_deposits_its_documents_once_with_one_mdn(clinic: Running) -> None:
    """DOMAIN.md §5 (deposit and its MDN) with a client that lost the 250 and sent again."""
    mail = document_mail(XDM([XDMDocument(cda())]).build())
    first = await clinic.submit(PRO, mail, [PATIENT])
    again = await clinic.submit(PRO, mail, [PATIENT])
    assert first.message == again.message  # the same queue id
    assert await _drain(clinic) == ["deposited 1 document(s)"]  # one deposit row
    assert len(await mdns(clinic)) == 1
    assert len(await clinic.inbox(PATIENT)) == 1
