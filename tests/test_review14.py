"""Issue 14's hostile review, run again with variants (review14): each test is named after
the rule of the issue it holds, over real clients (SMTP with the dev PKI)."""

from __future__ import annotations

import asyncio
import base64
import io
import zipfile

import aiosmtplib
import httpx
import pytest

from mss.dmp import service
from mss.security import auth
from mss.testing.xdmgen import XDM, XDMDocument, cda

from .harness import Running, message
from .space import PATIENT_INS, patient_client
from .space_mail import JEAN as SPACE_PRO
from .space_mail import add_people, pro_writes
from .test_dmp_api import DUPONT, dmp_api, document, patient, pro
from .test_dmp_mail import clinic, document_mail
from .test_dmp_mail_hardening import _never_seen_by_the_patient, _smtp_data, _with_attachment
from .test_login_throttle import JEAN, LIMITS, THROTTLED, WRONG, imap_login, smtp_auths
from .test_mx_sender_integrity import (
    INS,
    MARIE,
    OTHER_DOMAIN,
    PATIENT,
    PEER_DOCTOR,
    PEER_DOMAIN,
    _refused,
    _send,
    mx,
)

__all__ = ["clinic", "dmp_api", "mx"]


def _report_carrying(author: str, to: str, data: bytes, report_type: str) -> bytes:
    """A `multipart/report` whose report part is followed by an XDM attachment."""
    encoded = base64.encodebytes(data).decode().replace("\n", "\r\n")
    return (
        f"From: {author}\r\nTo: {to}\r\nSubject: Avis de non-remise\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type={report_type}; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nNon remis.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.autre.mssante.test\r\n\r\n"
        f"Final-Recipient: rfc822; x@{PEER_DOMAIN}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--b\r\nContent-Type: application/zip; name=IHE_XDM.ZIP\r\n"
        "Content-Disposition: attachment; filename=IHE_XDM.ZIP\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}"
        "--b--\r\n"
    ).encode()


@pytest.mark.parametrize("report_type", ["delivery-status", '"Disposition-Notification"'])
async def test_null_sender_report_never_carries_an_invisible_document_to_a_patient(
    mx: Running, report_type: str
) -> None:
    """Invisible documents: a null-sender report (not a professional) to a patient holding
    an XDM whose document is INVISIBLE_PATIENT is refused as a professional's mail is, and
    nothing of it reaches the DMP (a report never deposits)."""
    xdm = XDM([XDMDocument(cda(), confidentiality=("N", "INVISIBLE_PATIENT"))]).build()
    raw = _report_carrying(f"MAILER-DAEMON@{PEER_DOMAIN}", PATIENT, xdm, report_type)
    await _refused(mx, "", PATIENT, raw)
    assert await mx.inbox(PATIENT) == []


async def test_null_sender_report_never_deposits_documents(mx: Running) -> None:
    """A report carrying a visible XDM reaches the patient's mailbox, but no DMP."""
    xdm = XDM([XDMDocument(cda())]).build()
    raw = _report_carrying(f"MAILER-DAEMON@{PEER_DOMAIN}", PATIENT, xdm, "delivery-status")
    await _send(mx, "", PATIENT, raw)
    assert len(await mx.inbox(PATIENT)) == 1
    assert await mx.store.read(lambda c: service.count_documents(c, INS)) == 0


# --- throttling -------------------------------------------------------------------------------


async def test_throttle_counts_one_account_across_doors_and_letter_cases(mss: Running) -> None:
    """SMTP AUTH and IMAP LOGIN, `jean…` and `JEAN…`: one account, one budget."""
    await mss.add_pro(JEAN)
    port, ca = mss.ports["submission"], mss.ca
    assert await smtp_auths(port, ca, [(JEAN, "faux1", "127.0.0.1")] * 1) == [WRONG]
    for n in range(LIMITS.per_pair - 1):
        await asyncio.to_thread(imap_login, mss.ports["imaps"], ca, JEAN.upper(), f"faux{n + 2}")
    assert await smtp_auths(port, ca, [(JEAN.title(), "faux9", "127.0.0.1")]) == [THROTTLED]


async def test_unknown_account_costs_a_password_check_as_a_known_one(
    mss: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Throttling, no account oracle: a wrong password for an unknown account takes the
    time of a known one's (one password hash checked each), with the same answer."""
    checked: list[str] = []
    real = auth.verify_password

    def counting(password_hash: str, password: str) -> bool:
        checked.append(password)
        return real(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", counting)
    await mss.add_pro(JEAN)
    port, ca = mss.ports["submission"], mss.ca
    assert await smtp_auths(port, ca, [(JEAN, "faux-connu", "127.0.0.1")]) == [WRONG]
    assert await smtp_auths(port, ca, [(f"x{JEAN}", "faux-inconnu", "127.0.0.1")]) == [WRONG]
    assert sorted(checked) == ["faux-connu", "faux-inconnu"]


# --- web ----------------------------------------------------------------------------------------

HOSTILE_DOCUMENTS = [
    5, "x", {"a": 1}, [1], [None],
    [document(1, confidentiality=[1, 2])], [document(2, confidentiality=[{"a": 1}])],
    [document(3, confidentiality=5)], [document(4, replaces={"a": 1})],
    [document(5, replaces=10**30)], [document(6, unique_id=None)], [document(7, unique_id=1e308)],
    [document(8, unique_id="a\u0000b")], [document(9, title="a\u0000b")],
    [document(10, mime_type=["text/xml"])], [document(11, class_code={"x": 1})],
]  # fmt: skip


async def test_web_hostile_deposit_bodies_answer_a_json_4xx_and_deposit_nothing(
    dmp_api: tuple[Running, httpx.AsyncClient],
) -> None:
    """Wrong JSON types, NUL in strings, huge numbers, ids of the wrong kind: the JSON
    error of a bad document (422), never a 500, never a value stringified and stored."""
    _mss, web = dmp_api
    url = f"/api/dmp/patients/{INS}/documents"
    for documents in HOSTILE_DOCUMENTS:
        answer = await web.post(url, json={"documents": documents}, headers=pro(DUPONT))
        assert answer.status_code == 422, (documents, answer.text)
        assert answer.json()["error"] == "DMPInvalidDocument"
    await web.post(f"/api/dmp/patients/{INS}/authorization", json={}, headers=pro(DUPONT))
    assert (await web.get(url, headers=pro(DUPONT))).json()["documents"] == []


async def test_invisible_confidentiality_given_as_a_string_is_never_made_visible(
    dmp_api: tuple[Running, httpx.AsyncClient],
) -> None:
    """Invisible documents, every way to declare them: `"confidentiality":
    "INVISIBLE_PATIENT"` (a string, not a list) was read letter by letter and the document
    deposited visible to the patient; it is refused."""
    _mss, web = dmp_api
    url = f"/api/dmp/patients/{INS}/documents"
    body = {"documents": [document(1, confidentiality="INVISIBLE_PATIENT")]}
    answer = await web.post(url, json=body, headers=pro(DUPONT))
    assert answer.status_code == 422, answer.text
    assert (await web.get("/api/dmp/me/documents", auth=patient())).json()["documents"] == []


# --- invisible documents, however labelled ---------------------------------------------------

MISLABELLED = [
    ("xdm", "donnees.bin", "application", "octet-stream"),
    ("xdm", "documents.zip", "application", "x-zip-compressed"),
    ("cda", "cr.txt", "text", "plain"),
    ("cda", "cr.bin", "application", "octet-stream"),
    ("cda", "cr.pdf", "application", "pdf"),
]


@pytest.mark.parametrize(("what", "filename", "maintype", "subtype"), MISLABELLED)
async def test_an_invisible_document_under_another_label_is_refused_at_data(
    clinic: Running, what: str, filename: str, maintype: str, subtype: str
) -> None:
    """Invisible documents, every way to declare them: an XDM or a CDA whose attachment
    is labelled as something else (octet-stream, text, another name) still declares
    INVISIBLE_PATIENT; the patient would download it from their mailbox."""
    if what == "xdm":
        data = XDM([XDMDocument(cda(), confidentiality=("N", "INVISIBLE_PATIENT"))]).build()
    else:
        data = cda(confidentiality="INVISIBLE_PATIENT")
    code, text = await _smtp_data(clinic, _with_attachment(data, filename, maintype, subtype))
    assert code == 550 and b"INVISIBLE_PATIENT" in text
    await _never_seen_by_the_patient(clinic)


@pytest.mark.parametrize("field", ["Sender", "Resent-From", "Resent-Sender", "sender"])
async def test_mx_refuses_a_sender_field_of_our_own_domains(mx: Running, field: str) -> None:
    """MX sender integrity: a colleague's address here in Sender ("on behalf of") or a
    Resent- field, from another operator, as in From."""
    raw = message(PEER_DOCTOR, PATIENT, headers={field: f"Marie Martin <{MARIE.upper()}.>"})
    assert "hébergé ici" in await _refused(mx, PEER_DOCTOR, PATIENT, raw)
    assert await mx.inbox(PATIENT) == []
    await _send(
        mx, PEER_DOCTOR, PATIENT, message(PEER_DOCTOR, PATIENT, headers={field: PEER_DOCTOR})
    )


async def test_web_nul_and_controls_in_a_patient_reply_never_reach_the_mail(
    mss: Running,
) -> None:
    """Web, NUL in what a form sends: the space's reply is a text mail without NUL or
    other control characters (they are not allowed in a text body), the rest kept."""
    await add_people(mss, PATIENT_INS)
    await pro_writes(mss, SPACE_PRO, f"{PATIENT_INS}@patient.mssante.fr", "<m1@pro.mssante.test>")
    async with patient_client(mss, PATIENT_INS) as (web, csrf):
        form = {"csrf": csrf, "texte": "Merci\x00 docteur\x1b[31m\x07\tà bientôt\rfin"}
        sent = await web.post("/espace/messages/1/repondre", data=form)
        assert sent.status_code == 303, sent.text
    [reply] = [m for m in await mss.inbox(SPACE_PRO) if b"Merci" in m]
    assert b"Merci docteur[31m\t\xc3\xa0 bient\xc3\xb4t\r\nfin" in reply.replace(b"=\r\n", b"")
    assert not any(byte < 32 and byte not in b"\t\r\n" for byte in reply)


def _with_entries(xdm: bytes, extra: dict[str, bytes]) -> bytes:
    """The XDM's archive with more entries, unlisted by its METADATA.XML."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xdm)) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            target.writestr(name, source.read(name))
        for name, data in extra.items():
            target.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize("where", ["unlisted CDA", "nested XDM", "nested twice"])
async def test_an_invisible_document_unlisted_in_an_xdm_is_refused_at_data(
    clinic: Running, where: str
) -> None:
    """Invisible documents, every way to declare them: the XDM's METADATA lists a visible
    document, but its archive also holds an INVISIBLE_PATIENT CDA (or an XDM of one) that
    the patient reads by unzipping the attachment of their mail."""
    visible = XDM([XDMDocument(cda())]).build()
    invisible = XDM([XDMDocument(cda(), confidentiality=("N", "INVISIBLE_PATIENT"))]).build()
    extra = {
        "unlisted CDA": {"IHE_XDM/SUBSET01/DOC0002.XML": cda(confidentiality="INVISIBLE_PATIENT")},
        "nested XDM": {"ANNEXE/IHE_XDM.ZIP": invisible},
        "nested twice": {"A/IHE_XDM.ZIP": _with_entries(visible, {"B/X.ZIP": invisible})},
    }[where]
    code, text = await _smtp_data(clinic, document_mail(_with_entries(visible, extra)))
    assert code == 550 and b"INVISIBLE_PATIENT" in text
    await _never_seen_by_the_patient(clinic)


async def test_submission_sender_field_must_be_the_login(mss: Running) -> None:
    """Sender integrity at submission: a Sender field naming a colleague ("Marie on behalf
    of Jean") is refused as a From of hers is; one's own is accepted."""
    await mss.add_pro(JEAN)
    await mss.add_pro(MARIE)
    forged = message(JEAN, JEAN, headers={"Sender": f"Marie <{MARIE}>"})
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await mss.submit(JEAN, forged, [JEAN])
    assert info.value.code == 550 and "Sender" in info.value.message
    await mss.submit(JEAN, message(JEAN, JEAN, headers={"Sender": JEAN.upper()}), [JEAN])
    assert len(await mss.inbox(JEAN)) == 1


@pytest.mark.parametrize("national_id", ["9" * 5000, "81000345678", "x", "8100034567890", "0" * 12])
async def test_web_absurd_national_ids_answer_a_json_4xx(
    dmp_api: tuple[Running, httpx.AsyncClient], national_id: str
) -> None:
    """Web, absurd ids: a médecin traitant or a blocked professional is named by a national
    id (8 + RPPS, 0 + ADELI); anything else is a JSON 422, not stored (it was: 204)."""
    _mss, web = dmp_api
    for call in (web.put, web.delete):
        answer = await call(f"/api/dmp/me/treating/{national_id}", auth=patient())
        assert answer.status_code == 422 and answer.json()["error"] == "InvalidRequest"
    answer = await web.put(f"/api/dmp/patients/{INS}/blocked/{national_id}", headers=pro(DUPONT))
    assert answer.status_code == 422 and answer.json()["error"] == "InvalidRequest"


async def test_operator_certificate_never_speaks_for_the_parent_of_its_domain(
    mx: Running,
) -> None:
    """MX sender integrity, the certificate binding: the peer's certificate names its mail
    domain `autre.mssante.test` (a domain, not a host): it does not speak for the parent
    `mssante.test`, another operator's domain of the trust space."""
    await mx.trust(PEER_DOMAIN, OTHER_DOMAIN, "mssante.test")  # (it replaces the list)
    parent = "dr.x@mssante.test"
    await _refused(mx, parent, MARIE, message(parent, MARIE))
    assert await mx.inbox(MARIE) == []
