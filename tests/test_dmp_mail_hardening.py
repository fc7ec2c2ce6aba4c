"""Document mail to patients that tries to trick the deposit or its MDN (issue 14).

Over real SMTP (submission, STARTTLS), as tests/test_dmp_mail.py: a CDA of another
patient inside an XDM, a mail with nothing to deposit, hostile encodings, corrupt
archives, MDN targets chosen by the sender.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import zipfile
from email import message_from_bytes
from email.header import Header
from email.message import EmailMessage
from email.policy import default

import pytest

from mss.dmp import service
from mss.store import outbox
from mss.testing.xdmgen import INS, XDM, XDMDocument, cda

from .harness import PASSWORD, Running, message
from .test_dmp_mail import PATIENT, PRO, SUBJECT, _drain, clinic, document_mail, mdns

__all__ = ["clinic"]  # the fixture, shared with test_dmp_mail.py

OTHER_INS = "188102B17295165"


async def _mdns(mss: Running, to: str = PRO) -> list[bytes]:
    return await mdns(mss, to)


async def test_a_cda_of_another_patient_inside_an_xdm_is_refused_with_904(
    clinic: Running,
) -> None:
    """METADATA names the recipient, the CDA's recordTarget another patient: 904, as the
    bare route answers; nothing of the mail deposited (the good document beside it neither)."""
    good = XDMDocument(cda())
    stranger = XDMDocument(
        cda(ins=OTHER_INS, extension="CR-2026-0002"), name="DOC0002.XML",
        unique_id="1.2.250.1.999.1.1^CR-2026-0002",
    )  # fmt: skip
    await clinic.submit(PRO, document_mail(XDM([good, stranger]).build()), [PATIENT])
    [result] = await _drain(clinic)
    assert "904" in result
    assert await clinic.store.read(lambda c: service.count_documents(c, INS)) == 0
    await _drain(clinic, "mdn")
    [mdn] = await _mdns(clinic)
    assert message_from_bytes(mdn, policy=default)["Subject"].startswith(
        "[KO Intégration système !][904]"
    )


async def test_a_cda_labelled_as_a_pdf_inside_an_xdm_is_still_checked(clinic: Running) -> None:
    """The declared type does not hide a CDA from the check."""
    stranger = XDMDocument(cda(ins=OTHER_INS), mime_type="application/pdf")
    await clinic.submit(PRO, document_mail(XDM([stranger]).build()), [PATIENT])
    [result] = await _drain(clinic)
    assert "904" in result
    assert await clinic.store.read(lambda c: service.count_documents(c, INS)) == 0


async def test_a_cda_without_ins_inside_an_xdm_is_refused_with_903(clinic: Running) -> None:
    await clinic.submit(PRO, document_mail(XDM([XDMDocument(cda(ins=None))]).build()), [PATIENT])
    [result] = await _drain(clinic)
    assert "903" in result


# --- an MDN only for documents deposited, only to the sender -----------------------------


def _with_attachment(data: bytes, filename: str, maintype: str, subtype: str, **kw: str) -> bytes:
    mail = EmailMessage(policy=default)
    mail["From"], mail["To"], mail["Subject"] = PRO, PATIENT, kw.get("subject", SUBJECT)
    mail["Message-ID"] = kw.get("message_id", "<att-0001@pro.mssante.test>")
    mail["Disposition-Notification-To"] = kw.get("notify", PRO)
    mail.set_content("Bonjour.")
    mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return mail.as_bytes()


async def _outbox(mss: Running, kind: str) -> list[outbox.OutboxItem]:
    return await mss.store.read(lambda c: outbox.list_items(c, kinds=[kind]))


async def test_an_mdn_says_processed_only_when_documents_were_deposited(clinic: Running) -> None:
    """A mail whose only attachment is a text deposits nothing: no MDN at all (there is
    nothing to acknowledge, as for a mail without attachment), never "intégrés"."""
    await clinic.submit(PRO, _with_attachment(b"notes", "notes.txt", "text", "plain"), [PATIENT])
    assert await _drain(clinic) == ["nothing to deposit"]
    assert await _outbox(clinic, "mdn") == []
    assert await _mdns(clinic) == []


async def test_an_mdn_goes_to_the_sender_never_to_an_address_of_its_choosing(
    clinic: Running,
) -> None:
    """Disposition-Notification-To naming another address than the sender: no MDN (RFC
    8098 §2.1), to nobody; naming the sender: the MDN goes to the sender."""
    witness = "temoin@pro.mssante.test"
    await clinic.add_pro(witness)
    elsewhere = document_mail(XDM([XDMDocument(cda())]).build()).replace(
        f"Disposition-Notification-To: {PRO}".encode(),
        f"Disposition-Notification-To: {witness}".encode(),
    )
    await clinic.submit(PRO, elsewhere, [PATIENT])
    assert await _drain(clinic) == ["deposited 1 document(s)"]
    assert await _outbox(clinic, "mdn") == []
    assert await clinic.inbox(witness) == [] and await _mdns(clinic) == []
    second = XDMDocument(cda(extension="CR-2"), unique_id="1.2.250.1.999.1.1^CR-2")
    own = document_mail(XDM([second]).build()).replace(b"cr-0001@", b"cr-0002@")
    await clinic.submit(PRO, own, [PATIENT])
    await _drain(clinic)
    await _drain(clinic, "mdn")
    assert len(await _mdns(clinic)) == 1 and await clinic.inbox(witness) == []


def test_no_mdn_for_the_null_sender_or_a_patient() -> None:
    """Pure rule: nothing answers the null sender; a patient never gets an MDN (only a
    professional feeds a DMP: no MDN from a patient to a patient)."""
    from mss.core.mime import parse_headers
    from mss.delivery.mdn import mdn_target

    def target(notify: str, sender: str) -> str | None:
        raw = f"Disposition-Notification-To: {notify}\r\n\r\n".encode()
        return mdn_target(parse_headers(raw, 0, len(raw) - 2), sender, "patient.mssante.fr")

    assert target(PRO, PRO) == PRO
    assert target(PRO.upper(), PRO) == PRO
    assert target("", "") is None and target(PRO, "") is None
    assert target("x@autre.test", PRO) is None
    assert target(PATIENT, PATIENT) is None


# --- headers of our reports: RFC 2047 --------------------------------------------------


def _head_is_ascii(raw: bytes) -> bool:
    return raw[: raw.index(b"\r\n\r\n")].isascii()


async def test_mdn_and_dsn_subjects_are_rfc2047_encoded(clinic: Running) -> None:
    subject = "XDM/1.0/DDM+Résumé de séjour DE VINCI Ruth 17/03/1979"
    mail = document_mail(XDM([XDMDocument(cda())]).build()).replace(
        SUBJECT.encode(), Header(subject, "utf-8").encode().encode()
    )
    await clinic.submit(PRO, mail, [PATIENT])
    await _drain(clinic)
    await _drain(clinic, "mdn")
    [mdn] = await _mdns(clinic)
    assert _head_is_ascii(mdn)
    assert message_from_bytes(mdn, policy=default)["Subject"] == f"Accusé de traitement : {subject}"
    colleague = "collegue@pro.mssante.test"
    await clinic.add_pro(colleague)
    note = message(PRO, colleague, Header("Résultat d'analyse", "utf-8").encode())
    await clinic.submit(PRO, note, [colleague], rcpt_options=["NOTIFY=SUCCESS"])
    [dsn] = [m for m in await clinic.inbox(PRO) if b"delivery-status" in m]
    assert _head_is_ascii(dsn)
    parsed = message_from_bytes(dsn, policy=default)
    assert parsed["Subject"] == "Message remis / Message delivered : Résultat d'analyse"
    assert parsed["From"].addresses[0].display_name == "Service de messagerie MSSanté"


# --- hostile encodings: the mail's error, never the runner's ------------------------------

_, _, _BODY = cda().partition(b"?>")
_TEXT = _BODY.decode()
HOSTILE = {
    "x-nonexistent": b'<?xml version="1.0" encoding="x-nonexistent"?>' + _BODY,
    "x-mac-klingon": b'<?xml version="1.0" encoding="x-mac-klingon"?>' + _BODY,
    "utf-7": ('<?xml version="1.0" encoding="utf-7"?>' + _TEXT).encode("utf-7"),
    "utf-32": ('<?xml version="1.0" encoding="utf-32"?>' + _TEXT).encode("utf-32"),
    "cp500": ('<?xml version="1.0" encoding="cp500"?>' + _TEXT).encode("cp500"),
    "bom contradicting": b'\xef\xbb\xbf<?xml version="1.0" encoding="iso-8859-1"?>' + _BODY,
    "broken bytes": b'<?xml version="1.0" encoding="utf-8"?>'
    + _BODY.replace(b"RUTH", b"R\xff\xfe"),
    "rot13": b'<?xml version="1.0" encoding="rot13"?>' + _BODY,
}


@pytest.mark.parametrize("encoding", list(HOSTILE))
async def test_a_hostile_encoding_ends_in_an_mdn_error_and_never_stops_the_deposits(
    clinic: Running, caplog: pytest.LogCaptureFixture, encoding: str
) -> None:
    """A CDA in an exotic or unknown encoding: this mail's MDN error (906) at once, logged
    with its row id, never a retry; the mail behind it deposits."""
    caplog.set_level(logging.INFO)
    poison = _with_attachment(HOSTILE[encoding], "cda.xml", "text", "xml")
    good = _with_attachment(cda(), "cda.xml", "text", "xml", message_id="<good@pro.mssante.test>")
    await clinic.submit(PRO, poison, [PATIENT])
    await clinic.submit(PRO, good, [PATIENT])
    results = await _drain(clinic)
    assert "906" in results[0] and results[1] == "deposited 1 document(s)"
    assert await clinic.store.read(lambda c: service.count_documents(c, INS)) == 1
    [first, _] = await _outbox(clinic, "dmp_deposit")
    assert first.attempts == 1  # not retried
    assert any(f"row {first.id} " in r.getMessage() and "906" in r.getMessage()
               for r in caplog.records)  # fmt: skip
    await _drain(clinic, "mdn")
    subjects = [message_from_bytes(m, policy=default)["Subject"] for m in await _mdns(clinic)]
    assert sorted(s.partition(" XDM")[0] for s in subjects) == [
        "Accusé de traitement :",
        "[KO Intégration système !][906]",
    ]


@pytest.mark.parametrize("encoding", ["x-nonexistent", "utf-7", "cp500", "broken bytes"])
async def test_a_metadata_in_a_hostile_encoding_is_refused_at_data(
    clinic: Running, encoding: str
) -> None:
    """The XDM cannot be read: a permanent refusal at DATA (5xx), nothing delivered."""
    rest = XDM([XDMDocument(cda())]).metadata().decode().partition("?>")[2]
    declaration = f'<?xml version="1.0" encoding="{encoding}"?>'
    if encoding == "broken bytes":
        declaration = '<?xml version="1.0" encoding="utf-8"?>'
        rest = rest.replace("SubmissionSet01", "Sub\udcff01", 1)
    metadata = (declaration + rest).encode(
        encoding if encoding in ("utf-7", "cp500") else "utf-8", "surrogateescape"
    )
    xdm = XDM([XDMDocument(cda())], metadata_override=metadata).build()
    code, _ = await _smtp_data(clinic, document_mail(xdm))
    assert code == 550
    assert await clinic.inbox(PATIENT) == []


# --- permanent, not temporary: corrupt archives and absurd structures ----------------------


async def _smtp_data(mss: Running, raw: bytes, to: str = PATIENT) -> tuple[int, bytes]:
    """The DATA reply to `raw` over smtplib (submission, STARTTLS, AUTH), in a thread."""

    def send() -> tuple[int, bytes]:
        with mss.smtplib_client() as client:
            client.login(PRO, PASSWORD)
            client.mail(PRO)
            client.rcpt(to)
            return client.data(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))

    return await asyncio.to_thread(send)


def _zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def _corrupt(kind: str) -> bytes:
    good = XDM([XDMDocument(cda())]).build()
    if kind == "bad zip":
        return b"PK\x03\x04" + b"\x00garbage" * 64
    if kind == "truncated":
        return good[: len(good) // 2]
    if kind == "no METADATA":
        return _zip({"IHE_XDM/SUBSET01/DOC0001.XML": cda()})
    if kind == "bad hash":
        return XDM([XDMDocument(cda(), hash="0" * 40)]).build()
    # a zip bomb: 20 MB of spaces as METADATA.XML
    return _zip({"IHE_XDM/SUBSET01/METADATA.XML": b"<a>" + b" " * 20_000_000 + b"</a>"})


@pytest.mark.parametrize("kind", ["bad zip", "truncated", "no METADATA", "bad hash", "zip bomb"])
async def test_a_corrupt_xdm_is_a_permanent_refusal(clinic: Running, kind: str) -> None:
    """550 at DATA (never a 451 the sender retries for days); nothing delivered or queued."""
    code, text = await _smtp_data(clinic, document_mail(_corrupt(kind)))
    assert code == 550, text
    assert "IHE_XDM" in text.decode()
    assert await clinic.inbox(PATIENT) == []
    assert await _outbox(clinic, "dmp_deposit") == []


def _nested(depth: int, to: str) -> bytes:
    head = f"From: {PRO}\r\nTo: {to}\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
    opening = "".join(f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'
                      for i in range(depth))  # fmt: skip
    closing = "".join(f"\r\n--b{i}--\r\n" for i in reversed(range(depth)))
    return (head + opening + "Content-Type: text/plain\r\n\r\nbonjour" + closing).encode()


async def test_a_thousand_level_multipart_is_a_permanent_refusal(clinic: Running) -> None:
    """To a patient: 550 at DATA. Never a 4xx, whoever the recipient."""
    code, _ = await _smtp_data(clinic, _nested(1000, PATIENT))
    assert code == 550
    colleague = "collegue@pro.mssante.test"
    await clinic.add_pro(colleague)
    code, _ = await _smtp_data(clinic, _nested(1000, colleague), colleague)
    assert code < 400 or code >= 500


# --- INVISIBLE_PATIENT, however declared ----------------------------------------------------


async def _never_seen_by_the_patient(mss: Running) -> None:
    assert await mss.inbox(PATIENT) == []
    assert await mss.store.read(lambda c: service.count_documents(c, INS)) == 0
    assert await mss.store.write(lambda tx: service.patient_documents(tx, INS)) == []


async def test_an_invisible_document_declared_by_the_cda_is_recognised(clinic: Running) -> None:
    """confidentialityCode INVISIBLE_PATIENT in a bare CDA, and in a CDA inside an XDM whose
    METADATA says N: refused as the METADATA's declaration is."""
    invisible = cda(confidentiality="INVISIBLE_PATIENT")
    bare = _with_attachment(invisible, "cda.xml", "text", "xml")
    wrapped = document_mail(XDM([XDMDocument(invisible, confidentiality=("N",))]).build())
    labelled = document_mail(XDM([XDMDocument(invisible, mime_type="application/pdf")]).build())
    utf16 = _with_attachment(_utf16(invisible), "cda.xml", "text", "xml")
    for raw in (bare, wrapped, labelled, document_mail(_autopresentable(invisible)), utf16):
        code, text = await _smtp_data(clinic, raw)
        assert code == 550 and b"INVISIBLE_PATIENT" in text
    await _never_seen_by_the_patient(clinic)


def _utf16(document: bytes) -> bytes:
    return document.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")


async def test_a_cda_in_utf16_is_read_as_a_cda(clinic: Running) -> None:
    """The element's name is not in the bytes: the CDA is found by parsing, not by a byte
    search (a CDA of another patient in UTF-16 would slip through: 904)."""
    await clinic.submit(PRO, _with_attachment(_utf16(cda()), "cda.xml", "text", "xml"), [PATIENT])
    stranger = _utf16(cda(ins=OTHER_INS, extension="CR-9"))
    mail = _with_attachment(stranger, "cda.xml", "text", "xml", message_id="<s@pro.mssante.test>")
    await clinic.submit(PRO, mail, [PATIENT])
    results = await _drain(clinic)
    assert results[0] == "deposited 1 document(s)" and "904" in results[1]


def _autopresentable(document: bytes) -> bytes:
    """An XDM holding a self-displaying CDA (XSL stylesheet embedding it)."""
    from .test_dmp_ans_examples import self_displaying

    return XDM([XDMDocument(self_displaying(document))]).build()


def _after_fields(xdm: bytes, where: str) -> bytes:
    """The XDM's Content-Type after 2,500 header fields, of the mail or of the part."""
    filler = "".join(f"X-Filler-{i}: {i}\r\n" for i in range(2500))
    zipped = base64.encodebytes(xdm).replace(b"\n", b"\r\n")
    part_head = filler if where == "part" else ""
    part = (
        f"{part_head}Content-Type: application/zip; name=IHE_XDM.ZIP\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        'Content-Disposition: attachment; filename="IHE_XDM.ZIP"\r\n\r\n'
    ).encode() + zipped
    head = f"From: {PRO}\r\nTo: {PATIENT}\r\nSubject: CR\r\nMIME-Version: 1.0\r\n"
    head += filler if where == "mail" else ""
    return ((head + 'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\n').encode()
            + part + b"\r\n--B--\r\n")  # fmt: skip


@pytest.mark.parametrize("where", ["mail", "part"])
async def test_an_invisible_document_declared_after_thousands_of_fields_is_refused(
    clinic: Running, where: str
) -> None:
    """The header parser stops at MAX_HEADER_FIELDS: the mail to a patient is then refused
    (5xx), the declaration never vanishes."""
    xdm = XDM([XDMDocument(cda(), confidentiality=("N", "INVISIBLE_PATIENT"))]).build()
    code, _ = await _smtp_data(clinic, _after_fields(xdm, where))
    assert 500 <= code < 600
    await _never_seen_by_the_patient(clinic)
