"""DOMAIN.md §2: the conversation rules with patients, one named test per rule.

Professionals and patients use the real submission port (STARTTLS + AUTH);
patients may log in to SMTP here because the test harness turns
`policy.patient_smtp_login` on (it is off by default).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import aiosmtplib
import pytest
from sqlalchemy import update

from mss.store.conversations import conversations_of_patient
from mss.store.models import conversation_message_table

from .harness import PASSWORD, Running, message

INS = "279035121518989"
PATIENT = f"{INS}@patient.mssante.fr"
OTHER_INS = "188102B17295165"
OTHER_PATIENT = f"{OTHER_INS}@patient.mssante.fr"
JEAN = "jean.dupont@pro.mssante.test"
MARIE = "marie.martin@pro.mssante.test"
PAUL = "paul.bernard@hopital.mssante.test"


@pytest.fixture
async def clinic(mss: Running) -> Running:
    for pro in (JEAN, MARIE, PAUL):
        await mss.add_pro(pro)
    await mss.add_patient(INS, password=PASSWORD)
    await mss.add_patient(OTHER_INS, password=PASSWORD, sex="M")
    return mss


async def _pro_writes(mss: Running, pro: str, to: list[str], msgid: str, **kwargs: object) -> None:
    reply = await mss.submit(pro, message(pro, ", ".join(to), message_id=msgid, **kwargs), to)  # type: ignore[arg-type]
    assert reply.code == 250


async def _patient_replies(
    mss: Running, to: list[str], in_reply_to: str | None, subject: str = "Re: Compte rendu"
) -> aiosmtplib.SMTPResponse:
    headers = {"In-Reply-To": in_reply_to, "References": in_reply_to} if in_reply_to else {}
    return await mss.submit(PATIENT, message(PATIENT, ", ".join(to), subject, headers=headers), to)


def _refused(info: pytest.ExceptionInfo[aiosmtplib.SMTPResponseException], enhanced: str) -> str:
    assert info.value.code == 550, info.value
    assert info.value.message.startswith(enhanced), info.value.message
    return info.value.message


async def test_professional_can_write_to_a_patient_and_starts_a_conversation(
    clinic: Running,
) -> None:
    await _pro_writes(clinic, JEAN, [PATIENT], "<m1@pro.mssante.test>")
    [stored] = await clinic.inbox(PATIENT)
    assert b"Subject: Compte rendu" in stored
    [conversation] = await clinic.store.read(lambda c: conversations_of_patient(c, INS))
    assert conversation.open and conversation.started_by == JEAN


async def test_patient_cannot_start_a_conversation(clinic: Running) -> None:
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await _patient_replies(clinic, [JEAN], None, subject="Bonjour docteur")
    assert "ne peut que répondre" in _refused(info, "5.7.1")
    assert await clinic.inbox(JEAN) == []


async def test_patient_reply_to_an_unknown_message_is_not_a_reply(clinic: Running) -> None:
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await _patient_replies(clinic, [JEAN], "<invented@pro.mssante.test>")
    _refused(info, "5.7.1")


async def test_patient_can_reply_inside_the_conversation(clinic: Running) -> None:
    await _pro_writes(clinic, JEAN, [PATIENT], "<m1@pro.mssante.test>")
    reply = await _patient_replies(clinic, [JEAN], "<m1@pro.mssante.test>")
    assert reply.code == 250
    [answer] = await clinic.inbox(JEAN)
    assert b"Re: Compte rendu" in answer


async def test_patient_can_reply_to_their_own_reply_chain(clinic: Running) -> None:
    await _pro_writes(clinic, JEAN, [PATIENT], "<m1@pro.mssante.test>")
    await clinic.submit(
        PATIENT,
        message(PATIENT, JEAN, "Re: 1", message_id="<r1@patient.test>",
                headers={"In-Reply-To": "<m1@pro.mssante.test>"}),
        [JEAN],
    )  # fmt: skip
    reply = await _patient_replies(clinic, [JEAN], "<r1@patient.test>")
    assert reply.code == 250


async def test_patient_can_only_reply_to_the_professionals_of_the_conversation(
    clinic: Running,
) -> None:
    await _pro_writes(clinic, JEAN, [PATIENT], "<m1@pro.mssante.test>")
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await _patient_replies(clinic, [JEAN, MARIE], "<m1@pro.mssante.test>")
    assert "professionnels de la conversation" in _refused(info, "5.7.1")
    assert await clinic.inbox(JEAN) == []


async def test_professional_in_copy_joins_the_conversation(clinic: Running) -> None:
    await _pro_writes(clinic, JEAN, [PATIENT, MARIE], "<m1@pro.mssante.test>")
    reply = await _patient_replies(clinic, [JEAN, MARIE], "<m1@pro.mssante.test>")
    assert reply.code == 250
    assert len(await clinic.inbox(MARIE)) == 2  # the copy, then the patient's reply


async def test_fin_subject_ends_the_conversation(clinic: Running) -> None:
    await _pro_writes(clinic, JEAN, [PATIENT], "<m1@pro.mssante.test>")
    await _pro_writes(clinic, JEAN, [PATIENT], "<m2@pro.mssante.test>", subject="[FIN]",
                      headers={"In-Reply-To": "<m1@pro.mssante.test>"})  # fmt: skip
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await _patient_replies(clinic, [JEAN], "<m1@pro.mssante.test>")
    assert "[FIN]" in _refused(info, "5.7.1")


async def test_x_mss_mes_fin_header_ends_the_conversation(clinic: Running) -> None:
    await _pro_writes(
        clinic, JEAN, [PATIENT], "<m1@pro.mssante.test>", headers={"X-MSS-MES": "FIN"}
    )
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await _patient_replies(clinic, [JEAN], "<m1@pro.mssante.test>")
    _refused(info, "5.7.1")


async def test_fin_without_reference_ends_every_open_conversation_with_that_patient(
    clinic: Running,
) -> None:
    await _pro_writes(clinic, JEAN, [PATIENT], "<m1@pro.mssante.test>")
    await _pro_writes(clinic, JEAN, [PATIENT], "<m2@pro.mssante.test>")
    await _pro_writes(clinic, JEAN, [PATIENT], "<m3@pro.mssante.test>", subject="[FIN]")
    conversations = await clinic.store.read(lambda c: conversations_of_patient(c, INS))
    assert conversations and not any(c.open for c in conversations)


async def test_only_a_professional_who_took_part_may_end_the_conversation(
    clinic: Running,
) -> None:
    """« Only a professional taking part in the conversation can end it » (§2): another's
    [FIN] answering it joins them to it and ends nothing; once in it, they may end it."""
    await _pro_writes(clinic, JEAN, [PATIENT], "<suivi-1@pro.mssante.test>")
    await _pro_writes(clinic, MARIE, [PATIENT], "<fin-1@pro.mssante.test>", subject="[FIN]",
                      headers={"In-Reply-To": "<suivi-1@pro.mssante.test>"})  # fmt: skip
    [conversation] = await clinic.store.read(lambda c: conversations_of_patient(c, INS))
    assert conversation.open
    assert (await _patient_replies(clinic, [JEAN], "<suivi-1@pro.mssante.test>")).code == 250
    await _pro_writes(clinic, MARIE, [PATIENT], "<fin-2@pro.mssante.test>", subject="[FIN]",
                      headers={"In-Reply-To": "<fin-1@pro.mssante.test>"})  # fmt: skip
    [conversation] = await clinic.store.read(lambda c: conversations_of_patient(c, INS))
    assert not conversation.open and conversation.ended_by == MARIE


async def test_a_message_id_another_sender_used_with_this_patient_is_refused(
    clinic: Running,
) -> None:
    """Messages are found again by their Message-ID: a professional reusing another's (or
    the patient's) would have their words shown as the other's."""
    await _pro_writes(clinic, JEAN, [PATIENT], "<rdv-1@pro.mssante.test>")
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await _pro_writes(clinic, MARIE, [PATIENT], "<rdv-1@pro.mssante.test>", subject="Autre")
    assert "Message-ID" in _refused(info, "5.7.1")
    reply = message(PATIENT, JEAN, "Re: Compte rendu", message_id="<p-1@patient.mssante.fr>",
                    headers={"In-Reply-To": "<rdv-1@pro.mssante.test>"})  # fmt: skip
    assert (await clinic.submit(PATIENT, reply, [JEAN])).code == 250
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await _pro_writes(clinic, JEAN, [PATIENT], "<p-1@patient.mssante.fr>")
    _refused(info, "5.7.1")
    await _pro_writes(clinic, JEAN, [PATIENT], "<rdv-1@pro.mssante.test>")  # sent again: taken
    await _pro_writes(clinic, MARIE, [OTHER_PATIENT], "<rdv-1@pro.mssante.test>")  # another one


async def test_professional_writing_again_after_fin_opens_a_new_conversation(
    clinic: Running,
) -> None:
    await _pro_writes(clinic, JEAN, [PATIENT], "<m1@pro.mssante.test>", subject="[FIN]")
    await _pro_writes(clinic, JEAN, [PATIENT], "<m2@pro.mssante.test>",
                      headers={"In-Reply-To": "<m1@pro.mssante.test>"})  # fmt: skip
    assert (await _patient_replies(clinic, [JEAN], "<m2@pro.mssante.test>")).code == 250


async def test_wrong_key_ins_is_refused_with_550_5_1_3(clinic: Running) -> None:
    with pytest.raises(aiosmtplib.SMTPRecipientRefused) as info:
        await clinic.submit(JEAN, message(JEAN, "x"), ["288091234567823@patient.mssante.fr"])
    text = info.value.message
    assert info.value.code == 550 and text.startswith("5.1.3")
    assert "288091234567823" in text


async def test_unknown_patient_is_refused_with_550_5_1_1(clinic: Running) -> None:
    with pytest.raises(aiosmtplib.SMTPRecipientRefused) as info:
        await clinic.submit(JEAN, message(JEAN, "x"), ["162018885045327@patient.mssante.fr"])
    assert "Patient inconnu" in _refused(info, "5.1.1")


async def test_closed_profile_is_refused_with_550_5_1_1(clinic: Running) -> None:
    await clinic.set_patient_status(INS, "closed")
    with pytest.raises(aiosmtplib.SMTPRecipientRefused) as info:
        await clinic.submit(JEAN, message(JEAN, PATIENT), [PATIENT])
    assert "fermé" in _refused(info, "5.1.1")


async def test_patient_who_opposed_is_refused_with_550_5_7_1(clinic: Running) -> None:
    await clinic.set_patient_status(INS, "opposed")
    with pytest.raises(aiosmtplib.SMTPRecipientRefused) as info:
        await clinic.submit(JEAN, message(JEAN, PATIENT), [PATIENT])
    assert "opposé" in _refused(info, "5.7.1")


async def test_a_mail_cannot_concern_two_patients(clinic: Running) -> None:
    with pytest.raises(aiosmtplib.SMTPRecipientRefused) as info:
        await clinic.submit(JEAN, message(JEAN, PATIENT), [PATIENT, OTHER_PATIENT])
    assert "un seul patient" in _refused(info, "5.7.1")


async def test_patient_cannot_write_to_another_patient(clinic: Running) -> None:
    with pytest.raises(aiosmtplib.SMTPRecipientRefused) as info:
        await clinic.submit(PATIENT, message(PATIENT, OTHER_PATIENT), [OTHER_PATIENT])
    _refused(info, "5.7.1")


async def test_reply_window_closes_patient_replies(instance) -> None:  # type: ignore[no-untyped-def]
    from .harness import running

    async with running(instance, overrides={"policy": {"reply_window_days": 7}}) as mss:
        await mss.add_pro(JEAN)
        await mss.add_patient(INS, password=PASSWORD)
        await _pro_writes(mss, JEAN, [PATIENT], "<m1@pro.mssante.test>")
        assert (await _patient_replies(mss, [JEAN], "<m1@pro.mssante.test>")).code == 250
        long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=8)
        await mss.store.write(
            lambda tx: tx.conn.execute(update(conversation_message_table).values(at=long_ago))
        )
        with pytest.raises(aiosmtplib.SMTPDataError) as info:
            await _patient_replies(mss, [JEAN], "<m1@pro.mssante.test>")
        assert "délai de réponse" in _refused(info, "5.7.1")


# --- from another operator (MX) ------------------------------------------------------------

PEER_DOMAIN = "autre.mssante.test"


async def _from_peer(mss: Running, sender: str, to: str) -> None:
    tls = mss.client_tls(*mss.pki.issue_operator("mx.autre.mssante.test", [PEER_DOMAIN]))
    client = mss.smtp("mx", tls_context=tls)
    await client.connect()
    try:
        await client.starttls()
        await client.sendmail(
            sender, [to], message(sender, to, message_id="<peer1@autre.mssante.test>")
        )
    finally:
        client.close()


async def test_unknown_sender_of_another_operator_cannot_write_to_a_patient(
    clinic: Running,
) -> None:
    await clinic.trust(PEER_DOMAIN)
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as info:
        await _from_peer(clinic, f"inconnu@{PEER_DOMAIN}", PATIENT)
    [refused] = info.value.recipients
    assert refused.code == 550 and "Seul un professionnel" in refused.message


async def test_known_professional_of_another_operator_can_write_to_a_patient(instance) -> None:  # type: ignore[no-untyped-def]
    from .harness import running

    known = f"dr.house@{PEER_DOMAIN}"
    async with running(instance, overrides={"policy": {"professionals": [known]}}) as mss:
        await mss.add_patient(INS)
        await mss.trust(PEER_DOMAIN)
        await _from_peer(mss, known, PATIENT)
        assert len(await mss.inbox(PATIENT)) == 1
        [conversation] = await mss.store.read(lambda c: conversations_of_patient(c, INS))
        assert conversation.started_by == known


async def test_professional_of_the_annuaire_can_write_to_a_patient(
    clinic: Running, tmp_path: Path
) -> None:
    """DOMAIN.md §2: a mailbox of another operator published in the annuaire is a
    professional's; one retired by the next extraction is no longer."""
    from mss.annuaire.importer import import_files

    from .test_annuaire import MSS_FILE

    header = MSS_FILE.read_text(encoding="utf-8-sig").splitlines()[0]
    sender = f"dr.house@{PEER_DOMAIN}"
    line = (
        f"PER|{sender}|8|10001234567|810001234567||||DR|HOUSE|Gregory|C|Civil|10|Médecin"
        "|||O|||||||||||75001||FRANCE"
    )
    published = tmp_path / "Extraction_Correspondance_MSSante_1.txt"
    published.write_text(f"{header}\n{line}\n", encoding="utf-8")
    import_files(clinic.store.db, [published])
    await clinic.trust(PEER_DOMAIN)
    await _from_peer(clinic, sender, PATIENT)
    assert len(await clinic.inbox(PATIENT)) == 1

    retired = tmp_path / "Extraction_Correspondance_MSSante_2.txt"
    other = line.replace(sender, f"dr.wilson@{PEER_DOMAIN}").replace("10001234567", "10001234568")
    retired.write_text(f"{header}\n{other.replace('810001234567', '810001234568')}\n")
    import_files(clinic.store.db, [retired])
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as info:
        await _from_peer(clinic, sender, f"{OTHER_INS}@patient.mssante.fr")
    [refused] = info.value.recipients
    assert refused.code == 550 and "Seul un professionnel" in refused.message


@pytest.mark.parametrize(
    "subject",
    [
        "=?utf-8?q?=5BFIN=5D?=",
        "=?UTF-8?B?W0ZJTl0=?=",
        "=?iso-8859-1?Q?=5BFI?= =?iso-8859-1?Q?N=5D?=",  # two encoded words, joined
        " [FIN] ",
    ],
)
async def test_fin_subject_rfc2047_encoded_ends_the_conversation(
    clinic: Running, subject: str
) -> None:
    """Issue 14: a subject that decodes to exactly `[FIN]` ends it, however encoded."""
    await _pro_writes(clinic, JEAN, [PATIENT], "<m1@pro.mssante.test>")
    await _pro_writes(clinic, JEAN, [PATIENT], "<m2@pro.mssante.test>", subject=subject,
                      headers={"In-Reply-To": "<m1@pro.mssante.test>"})  # fmt: skip
    [conversation] = await clinic.store.read(lambda c: conversations_of_patient(c, INS))
    assert not conversation.open and conversation.ended_by == JEAN


async def test_a_patients_fin_subject_ends_nothing(clinic: Running) -> None:
    """Only a professional ends a conversation: a patient's `[FIN]` is an ordinary reply."""
    await _pro_writes(clinic, JEAN, [PATIENT], "<m1@pro.mssante.test>")
    headers = {"In-Reply-To": "<m1@pro.mssante.test>", "X-MSS-MES": "FIN"}
    reply = message(
        PATIENT, JEAN, "[FIN]", message_id="<p-fin@patient.mssante.fr>", headers=headers
    )
    assert (await clinic.submit(PATIENT, reply, [JEAN])).code == 250
    [conversation] = await clinic.store.read(lambda c: conversations_of_patient(c, INS))
    assert conversation.open
