"""Issue 14, MX sender integrity: who wrote a message from another operator, and whether
that operator may speak for them.

Each test is named after the rule it holds; every message goes over real SMTP with the
dev PKI, from a peer operator whose certificate names `autre.mssante.test`.
"""

from __future__ import annotations

import aiosmtplib
import dkim
import pytest

from mss.security.dkim import StaticTXT, ensure_keys, public_record
from mss.store.conversations import conversations_of_patient

from .harness import Running, message

PEER_DOMAIN = "autre.mssante.test"
OTHER_DOMAIN = "troisieme.mssante.test"  # whitelisted, but not the peer's certificate's
PEER_DOCTOR = f"dr.house@{PEER_DOMAIN}"
INS = "279035121518989"
PATIENT = f"{INS}@patient.mssante.fr"
MARIE = "marie.martin@pro.mssante.test"


@pytest.fixture
async def mx(instance):  # type: ignore[no-untyped-def]
    from .harness import running

    known = [PEER_DOCTOR, f"dr.autre@{OTHER_DOMAIN}"]
    async with running(instance, overrides={"policy": {"professionals": known}}) as mss:
        await mss.trust(PEER_DOMAIN, OTHER_DOMAIN)
        await mss.add_patient(INS)
        await mss.add_pro(MARIE, password=None)
        yield mss


async def _send(mss: Running, sender: str, to: str, raw: bytes) -> None:
    tls = mss.client_tls(*mss.pki.issue_operator("mx.autre.mssante.test", [PEER_DOMAIN]))
    client = mss.smtp("mx", tls_context=tls)
    await client.connect()
    try:
        await client.starttls()
        await client.sendmail(sender, [to], raw)
    finally:
        client.close()


async def _refused(mss: Running, sender: str, to: str, raw: bytes) -> str:
    with pytest.raises((aiosmtplib.SMTPDataError, aiosmtplib.SMTPSenderRefused)) as info:
        await _send(mss, sender, to, raw)
    error = info.value
    assert isinstance(error, aiosmtplib.SMTPResponseException)
    assert error.code == 550, error.message
    assert "(" in error.message and ")" in error.message  # French, then the English meaning
    return error.message


def _report(author: str, to: str, report_type: str = "delivery-status") -> bytes:
    return (
        f"From: {author}\r\nTo: {to}\r\nSubject: Avis de non-remise\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type={report_type}; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nNon remis.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.autre.mssante.test\r\n\r\n"
        f"Final-Recipient: rfc822; x@{PEER_DOMAIN}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--b--\r\n"
    ).encode()


async def _conversations(mss: Running) -> list[object]:
    return list(await mss.store.read(lambda c: conversations_of_patient(c, INS)))


# --- null senders ---------------------------------------------------------------------------


async def test_null_sender_with_a_forged_doctor_from_is_refused(mx: Running) -> None:
    """`MAIL FROM:<>` is for reports only: an ordinary message with a doctor's From is not
    one, and never reaches the patient."""
    text = await _refused(mx, "", PATIENT, message(PEER_DOCTOR, PATIENT, "Rendez-vous"))
    assert "avis" in text.lower()
    assert await mx.inbox(PATIENT) == []
    assert await _conversations(mx) == []


async def test_null_sender_never_opens_a_conversation(mx: Running) -> None:
    """A report (DSN or MDN) to a patient is delivered, and neither opens nor ends a
    conversation, whatever its subject says."""
    await _send(mx, "", PATIENT, _report(f"MAILER-DAEMON@{PEER_DOMAIN}", PATIENT))
    fin = _report(f"MAILER-DAEMON@{PEER_DOMAIN}", PATIENT).replace(
        b"Subject: Avis de non-remise", b"Subject: [FIN]"
    )
    await _send(mx, "", PATIENT, fin)
    assert len(await mx.inbox(PATIENT)) == 2
    assert await _conversations(mx) == []


async def test_null_sender_report_must_come_from_the_peers_domains(mx: Running) -> None:
    """A report is still authored: its From is held to the same certificate binding."""
    await _refused(mx, "", PATIENT, _report(f"MAILER-DAEMON@{OTHER_DOMAIN}", PATIENT))
    assert await mx.inbox(PATIENT) == []


# --- the From header at the MX --------------------------------------------------------------


async def test_mx_refuses_a_from_of_our_own_domains(mx: Running) -> None:
    """A peer writing with a From of a domain hosted here (a colleague's name)."""
    text = await _refused(mx, PEER_DOCTOR, PATIENT, message(MARIE, PATIENT))
    assert "hébergé ici" in text
    assert await mx.inbox(PATIENT) == []


async def test_mx_from_must_be_the_envelope_sender_to_a_patient(mx: Running) -> None:
    """To a patient, the author is the one the conversation rules judged: the envelope."""
    forged = f"dr.autre.nom@{PEER_DOMAIN}"
    await _refused(mx, PEER_DOCTOR, PATIENT, message(forged, PATIENT))
    assert await mx.inbox(PATIENT) == []


async def test_mx_from_must_be_aligned_with_the_envelope_domain(mx: Running) -> None:
    """Between professionals, the From domain is the envelope's (relaxed alignment)."""
    await _send(mx, PEER_DOCTOR, MARIE, message(f"secretariat@{PEER_DOMAIN}", MARIE))
    await _refused(mx, PEER_DOCTOR, MARIE, message(f"dr.autre@{OTHER_DOMAIN}", MARIE))
    assert len(await mx.inbox(MARIE)) == 1


async def test_mx_refuses_a_from_with_several_authors(mx: Running) -> None:
    raw = message(f"{PEER_DOCTOR}, {MARIE}", MARIE)
    await _refused(mx, PEER_DOCTOR, MARIE, raw)
    raw = message(f"Équipe: {PEER_DOCTOR};", MARIE)
    await _refused(mx, PEER_DOCTOR, MARIE, raw)
    assert await mx.inbox(MARIE) == []


async def test_mx_refuses_a_message_without_from(mx: Running) -> None:
    raw = message(PEER_DOCTOR, MARIE).replace(f"From: {PEER_DOCTOR}\r\n".encode(), b"")
    await _refused(mx, PEER_DOCTOR, MARIE, raw)


# --- the operator certificate speaks for its domains ----------------------------------------


async def test_operator_certificate_bound_to_its_domains(mx: Running) -> None:
    """A whitelisted domain that the peer's certificate does not name, without DKIM."""
    sender = f"dr.autre@{OTHER_DOMAIN}"
    text = await _refused(mx, sender, PATIENT, message(sender, PATIENT))
    assert OTHER_DOMAIN in text
    assert await mx.inbox(PATIENT) == []
    assert await _conversations(mx) == []


async def test_aligned_dkim_signature_vouches_for_another_domain(mx: Running) -> None:
    """An operator hosting several domains may sign for one its certificate does not name."""
    sender = f"dr.autre@{OTHER_DOMAIN}"
    keys = ensure_keys(mx.data_dir / "peer-dkim", OTHER_DOMAIN, "k-rsa", "k-ed")
    raw = message(sender, PATIENT, "Résultats", message_id="<d1@troisieme.mssante.test>")
    signed = dkim.sign(raw, b"k-rsa", OTHER_DOMAIN.encode(), keys[0].private_key(),
                       include_headers=[b"from", b"to", b"subject"])  # fmt: skip
    lookup = StaticTXT({f"k-rsa._domainkey.{OTHER_DOMAIN}": public_record(keys[0])})
    assert mx.app.mail is not None
    mx.app.mail.pipeline._dkim_lookup = lookup
    await _send(mx, sender, PATIENT, signed + raw)
    assert len(await mx.inbox(PATIENT)) == 1
    # a signature of the peer's own domain does not vouch for another one
    keys = ensure_keys(mx.data_dir / "peer-dkim2", PEER_DOMAIN, "p-rsa", "p-ed")
    other = message(sender, PATIENT, "Encore", message_id="<d2@troisieme.mssante.test>")
    signed = dkim.sign(other, b"p-rsa", PEER_DOMAIN.encode(), keys[0].private_key(),
                       include_headers=[b"from", b"to", b"subject"])  # fmt: skip
    mx.app.mail.pipeline._dkim_lookup = StaticTXT(
        {f"p-rsa._domainkey.{PEER_DOMAIN}": public_record(keys[0])}
    )
    await _refused(mx, sender, PATIENT, signed + other)
    assert len(await mx.inbox(PATIENT)) == 1


async def test_certificate_naming_a_host_of_the_domain_speaks_for_it(mx: Running) -> None:
    """The certificate names `mx.autre.mssante.test`: a host inside the sender's domain."""
    tls = mx.client_tls(*mx.pki.issue_operator("mx.autre.mssante.test", ["mx.autre.mssante.test"]))
    client = mx.smtp("mx", tls_context=tls)
    await client.connect()
    try:
        await client.starttls()
        await client.sendmail(PEER_DOCTOR, [MARIE], message(PEER_DOCTOR, MARIE))
    finally:
        client.close()
    assert len(await mx.inbox(MARIE)) == 1
