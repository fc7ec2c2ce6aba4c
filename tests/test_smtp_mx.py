"""The MX (port 25) for the other operators: mutual TLS, whitelist, no open relay, DKIM."""

from __future__ import annotations

import ssl

import aiosmtplib
import dkim
import pytest

from mss.security.dkim import ensure_keys, public_record

from .harness import Running, message

PEER_DOMAIN = "autre.mssante.test"
PEER_HOST = "mx.autre.mssante.test"
PEER_PRO = f"paul.durand@{PEER_DOMAIN}"
MARIE = "marie.martin@pro.mssante.test"


async def _peer_client(mss: Running, *, certificate: bool = True) -> aiosmtplib.SMTP:
    tls = (
        mss.client_tls(*mss.pki.issue_operator(PEER_HOST, [PEER_DOMAIN]))
        if certificate
        else mss.client_tls()
    )
    client = mss.smtp("mx", tls_context=tls)
    await client.connect()
    await client.starttls()
    return client


async def test_mx_requires_starttls_before_mail(mss: Running) -> None:
    client = mss.smtp("mx")
    await client.connect()
    try:
        await client.ehlo()
        code, text = await client.execute_command(b"MAIL", f"FROM:<{PEER_PRO}>".encode())
    finally:
        client.close()
    assert code == 530 and "STARTTLS" in text


async def test_mx_refuses_a_peer_without_certificate(mss: Running) -> None:
    await mss.trust(PEER_DOMAIN)
    client = await _peer_client(mss, certificate=False)
    try:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as info:
            await client.mail(PEER_PRO)
    finally:
        client.close()
    assert info.value.code == 530
    assert "IGC-Santé" in info.value.message


async def test_mx_does_not_offer_auth(mss: Running) -> None:
    client = await _peer_client(mss)
    try:
        reply = await client.ehlo()
    finally:
        client.close()
    assert "AUTH" not in reply.message
    assert "DSN" in reply.message and "PIPELINING" in reply.message


async def test_mx_delivers_mail_of_a_whitelisted_operator(mss: Running) -> None:
    await mss.trust(PEER_DOMAIN)
    await mss.add_pro(MARIE, password=None)
    client = await _peer_client(mss)
    try:
        await client.sendmail(PEER_PRO, [MARIE], message(PEER_PRO, MARIE, "Avis"))
    finally:
        client.close()
    [stored] = await mss.inbox(MARIE)
    assert b"with ESMTPS id" in stored
    assert b"Authentication-Results: mail.pro.mssante.test;\r\n\tdkim=none" in stored


async def test_mx_refuses_a_sender_domain_off_the_whitelist(mss: Running) -> None:
    await mss.add_pro(MARIE, password=None)
    client = await _peer_client(mss)
    try:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as info:
            await client.mail("x@not-whitelisted.test")
    finally:
        client.close()
    assert info.value.code == 550
    assert "espace de confiance" in info.value.message


async def test_mx_refuses_our_own_domain_from_outside(mss: Running) -> None:
    client = await _peer_client(mss)
    try:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as info:
            await client.mail(MARIE)
    finally:
        client.close()
    assert info.value.code == 550


async def test_mx_is_not_an_open_relay(mss: Running) -> None:
    await mss.trust(PEER_DOMAIN, "troisieme.mssante.test")
    client = await _peer_client(mss)
    try:
        await client.mail(PEER_PRO)
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as info:
            await client.rcpt("quelqu.un@troisieme.mssante.test")
    finally:
        client.close()
    assert info.value.code == 550
    assert "relay denied" in info.value.message


async def test_mx_refuses_a_revoked_operator_certificate(mss: Running) -> None:
    await mss.trust(PEER_DOMAIN)
    await mss.add_pro(MARIE, password=None)
    cert, key = mss.pki.issue_operator(PEER_HOST, [PEER_DOMAIN], filename="revoked-operator")
    mss.pki.revoke(cert)
    assert mss.app.mail is not None
    assert await mss.app.mail.refresh_tls()  # what the server does every minute
    client = mss.smtp("mx", tls_context=mss.client_tls(cert, key))
    await client.connect()

    async def try_to_send() -> None:
        await client.starttls()
        await client.ehlo()
        await client.mail(PEER_PRO)

    with pytest.raises((aiosmtplib.SMTPException, ssl.SSLError, ConnectionError)):
        await try_to_send()
    client.close()
    assert await mss.inbox(MARIE) == []


def _signed(mss: Running, body: str = "Bonjour\r\n") -> tuple[bytes, str]:
    keys = ensure_keys(mss.data_dir / "peer-dkim", PEER_DOMAIN, "peer-rsa", "peer-ed")
    raw = message(PEER_PRO, MARIE, "Signé", body)
    signature = dkim.sign(raw, b"peer-rsa", PEER_DOMAIN.encode(), keys[0].private_key(),
                          include_headers=[b"from", b"to", b"subject"])  # fmt: skip
    record = f"peer-rsa._domainkey.{PEER_DOMAIN} {public_record(keys[0])}\n"
    return signature + raw, record


async def test_mx_verifies_dkim_and_records_the_result(mss: Running) -> None:
    await mss.trust(PEER_DOMAIN)
    await mss.add_pro(MARIE, password=None)
    signed, record = _signed(mss)
    (mss.data_dir / "dkim" / "peer-keys.txt").write_text(record)
    mss.app.mail.pipeline._dkim_lookup = type(mss.app.mail.pipeline._dkim_lookup).from_file(  # type: ignore[union-attr]
        mss.data_dir / "dkim" / "peer-keys.txt"
    )
    client = await _peer_client(mss)
    try:
        await client.sendmail(PEER_PRO, [MARIE], signed)
        await client.sendmail(PEER_PRO, [MARIE], signed.replace(b"Bonjour", b"Bonsoir"))
    finally:
        client.close()
    good, tampered = await mss.inbox(MARIE)
    assert f"dkim=pass header.d={PEER_DOMAIN} header.s=peer-rsa".encode() in good
    assert b"dkim=fail" in tampered


async def test_mx_can_reject_mail_without_a_passing_signature(instance) -> None:  # type: ignore[no-untyped-def]
    from .harness import running

    async with running(instance, overrides={"dkim": {"on_verify_failure": "reject"}}) as mss:
        await mss.trust(PEER_DOMAIN)
        await mss.add_pro(MARIE, password=None)
        client = await _peer_client(mss)
        try:
            with pytest.raises(aiosmtplib.SMTPDataError) as info:
                await client.sendmail(PEER_PRO, [MARIE], message(PEER_PRO, MARIE))
        finally:
            client.close()
        assert (info.value.code, info.value.message[:6]) == (550, "5.7.20")
        assert await mss.inbox(MARIE) == []


async def test_mx_refuses_a_from_header_twice(mss: Running) -> None:
    """Issue 14: a second From (a forged doctor's name after the real one) is refused."""
    await mss.trust(PEER_DOMAIN)
    await mss.add_pro(MARIE, password=None)
    raw = message(PEER_PRO, MARIE, "Avis").replace(
        b"\r\n\r\n", b"\r\nFrom: dr.faux@pro.mssante.test\r\n\r\n", 1
    )
    client = await _peer_client(mss)
    try:
        with pytest.raises(aiosmtplib.SMTPDataError) as info:
            await client.sendmail(PEER_PRO, [MARIE], raw)
    finally:
        client.close()
    assert (info.value.code, info.value.message[:5]) == (550, "5.6.0")
    assert await mss.inbox(MARIE) == []
