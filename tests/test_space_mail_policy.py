"""The rules of the patient's writing are decided once, in `delivery/policy.py` and
`delivery/checks.py`, whatever the door: the space (`Door.WEB`) and a patient's SMTP
submission get the same answers (DOMAIN.md §2)."""

from __future__ import annotations

import html
import re

import aiosmtplib
import pytest
from sqlalchemy import update

from mss.delivery.checks import Door
from mss.delivery.inbound import SessionInfo
from mss.errors import Rejection
from mss.security.auth import LoginIdentity
from mss.store.models import account_table

from .harness import PASSWORD, Running, message
from .space import PATIENT_INS, patient_client
from .space_mail import JEAN, MARIE, PATIENT, add_people, imap_inbox, pro_writes

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def clinic(mss: Running) -> Running:
    await add_people(mss)
    await mss.add_patient(PATIENT_INS, password=PASSWORD)  # SMTP too, for the comparison
    await mss.add_patient("188102B17295165")
    return mss


async def _web_new(client: object, csrf: str, to: str) -> int:
    sent = await client.post(  # type: ignore[attr-defined]
        "/espace/messages/nouveau",
        data={"csrf": csrf, "destinataire": to, "objet": "Question", "texte": "Docteur ?"},
    )
    return int(sent.status_code)


async def test_the_space_sends_only_as_a_patient(clinic: Running) -> None:
    assert clinic.app.mail is not None
    pipeline = clinic.app.mail.pipeline
    pro = LoginIdentity(JEAN, "professional", None, "space")
    with pytest.raises(Rejection) as info:
        await pipeline.sender(SessionInfo(Door.WEB, "espace", None, True, pro), JEAN)
    assert "patients" in info.value.text
    with pytest.raises(Rejection):
        await pipeline.sender(SessionInfo(Door.WEB, "espace", None, True, None), "")
    patient = SessionInfo(
        Door.WEB, "espace", None, True, LoginIdentity(PATIENT, "patient", None, "space")
    )
    with pytest.raises(Rejection):  # another patient's address than the session's
        await pipeline.sender(patient, "188102B17295165@patient.mssante.fr")


async def test_a_patient_may_not_write_to_another_patient_from_the_space(clinic: Running) -> None:
    await pro_writes(clinic, JEAN, PATIENT, "<m1@pro.mssante.test>")
    async with patient_client(clinic, PATIENT_INS) as (client, csrf):
        status = await _web_new(client, csrf, "188102B17295165@patient.mssante.fr")
    assert status == 403


async def test_a_new_message_goes_to_one_professional_only(clinic: Running) -> None:
    await pro_writes(clinic, JEAN, PATIENT, "<m1@pro.mssante.test>")
    await pro_writes(clinic, MARIE, PATIENT, "<m2@pro.mssante.test>")
    raw = message(PATIENT, f"{JEAN}, {MARIE}", "Question")
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await clinic.submit(PATIENT, raw, [JEAN, MARIE])
    assert "un seul professionnel" in info.value.message


async def test_after_fin_a_professional_may_no_longer_be_written_to_until_they_write_again(
    clinic: Running,
) -> None:
    await pro_writes(clinic, JEAN, PATIENT, "<m1@pro.mssante.test>")
    await pro_writes(clinic, JEAN, PATIENT, "<m2@pro.mssante.test>", subject="[FIN]")
    async with patient_client(clinic, PATIENT_INS) as (client, csrf):
        form = await client.get("/espace/messages/nouveau")
        assert "Jean Dupont" not in form.text
        assert "Nouveau message</a>" not in (await client.get("/espace/messages")).text
        assert await _web_new(client, csrf, JEAN) == 403
        await pro_writes(clinic, JEAN, PATIENT, "<m3@pro.mssante.test>", subject="Reprise")
        assert "Jean Dupont" in (await client.get("/espace/messages/nouveau")).text
        assert "Nouveau message</a>" in (await client.get("/espace/messages")).text
        assert await _web_new(client, csrf, JEAN) == 303
    [received] = await imap_inbox(clinic, JEAN)
    assert received["Subject"] == "Question"


async def test_smtp_submission_and_the_space_get_the_same_answer(clinic: Running) -> None:
    """A patient's SMTP new message follows the rule the space follows."""
    await pro_writes(clinic, JEAN, PATIENT, "<m1@pro.mssante.test>")
    ok = await clinic.submit(PATIENT, message(PATIENT, JEAN, "Question"), [JEAN])
    assert ok.code == 250
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await clinic.submit(PATIENT, message(PATIENT, MARIE, "Question"), [MARIE])
    smtp_text = info.value.message
    async with patient_client(clinic, PATIENT_INS) as (client, csrf):
        refused = await client.post(
            "/espace/messages/nouveau",
            data={"csrf": csrf, "destinataire": MARIE, "objet": "Q", "texte": "Docteur ?"},
        )
    french = html.unescape(re.search(r'role="alert">([^<]+)<', refused.text).group(1))  # type: ignore[union-attr]
    assert french in smtp_text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("objet", "Bonjour\r\nBcc: espion@pro.mssante.test"),
        ("objet", "Bonjour\nBcc: espion@pro.mssante.test"),
        ("objet", "Bonjour\rdocteur"),
        ("objet", "Bonjour\u2028docteur"),  # every separator str.splitlines knows
        ("objet", "Bonjour\u2029docteur"),
        ("objet", "Bonjour\x85docteur"),
        ("objet", "Bonjour\x0bdocteur"),
        ("objet", "Bonjour\x0cdocteur"),
        ("objet", "Bonjour\x1cdocteur"),
        ("objet", "Bonjour\x00docteur"),
        ("destinataire", f"{JEAN}\r\nBcc: espion@pro.mssante.test"),
        ("destinataire", f"{JEAN}\u2028"),
    ],
)
async def test_a_new_message_with_a_line_break_in_a_field_is_refused_not_a_crash(
    clinic: Running, field: str, value: str
) -> None:
    await pro_writes(clinic, JEAN, PATIENT, "<m1@pro.mssante.test>")
    form = {"destinataire": JEAN, "objet": "Question", "texte": "Bonjour docteur", field: value}
    async with patient_client(clinic, PATIENT_INS) as (client, csrf):
        sent = await client.post("/espace/messages/nouveau", data={"csrf": csrf, **form})
    assert sent.status_code == 400, sent.text
    assert "sur une ligne" in html.unescape(sent.text)
    assert await imap_inbox(clinic, JEAN) == []


async def test_a_reply_to_a_professional_whose_subject_encodes_a_line_break_works(
    clinic: Running,
) -> None:
    """`=?utf-8?q?...=0D=0A...?=` decodes to a line break: the « Re: » subject built from it
    is put on one line (and cut to a patient's subject length)."""
    encoded = "=?utf-8?q?R=C3=A9sultats=0D=0ABcc=3A_x=40pro=2Emssante=2Etest?="
    await pro_writes(clinic, JEAN, PATIENT, "<m1@pro.mssante.test>", subject=encoded)
    await pro_writes(clinic, MARIE, PATIENT, "<m2@pro.mssante.test>", subject="Long " * 60)
    async with patient_client(clinic, PATIENT_INS) as (client, csrf):
        listing = (await client.get("/espace/messages")).text
        replies = [
            await client.post(f"/espace/messages/{c}/repondre",
                              data={"csrf": csrf, "texte": "Merci docteur"})
            for c in re.findall(r'href="/espace/messages/(\d+)"', listing)
        ]  # fmt: skip
    assert [r.status_code for r in replies] == [303, 303], [r.text[-500:] for r in replies]
    [received] = await imap_inbox(clinic, JEAN)
    assert received["Subject"] == "Re: Résultats Bcc: x@pro.mssante.test"
    assert received["Bcc"] is None


async def test_a_patient_whose_name_holds_a_line_break_can_still_write(clinic: Running) -> None:
    await pro_writes(clinic, JEAN, PATIENT, "<m1@pro.mssante.test>")
    named = update(account_table).where(account_table.c.address == PATIENT)
    await clinic.store.write(
        lambda tx: tx.conn.execute(named.values(display_name="Léa\r\nBcc: x@pro.mssante.test"))
    )
    async with patient_client(clinic, PATIENT_INS) as (client, csrf):
        sent = await client.post(
            "/espace/messages/nouveau",
            data={"csrf": csrf, "destinataire": JEAN, "objet": "Question", "texte": "Docteur ?"},
        )
    assert sent.status_code == 303, html.unescape(sent.text)[-800:]
    [received] = await imap_inbox(clinic, JEAN)
    assert received["Bcc"] is None and "Léa Bcc" in str(received["From"])
