"""TLS session resumption: an operator that reconnects resumes its session (no
certificate signed or checked again), with whichever worker of `mss serve` takes the
connection; the peer stays known by its certificate; a session from before a new
CRL is not resumed; mss's own relay offers each peer its last session again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from pathlib import Path

import aiosmtplib
import pytest

from mss.config import Settings
from mss.security import pki
from mss.security.pki import DevPKI
from mss.security.tls import ResumingContext, client_context
from mss.wiring import TLSContexts, tls_contexts

from .harness import Running, message, running
from .test_processes import _serve_with_workers
from .test_serve import stop_server, wait_ready

PEER_DOMAIN = "autre.mssante.test"
PEER_HOST = "mx.autre.mssante.test"
PEER_PRO = f"paul.durand@{PEER_DOMAIN}"
MARIE = "marie.martin@pro.mssante.test"
REFUSED = (aiosmtplib.SMTPException, ssl.SSLError, ConnectionError)  # a revoked peer


def _operator_tls(certs: Path, *, filename: str | None = None) -> tuple[ResumingContext, Path]:
    """A reconnecting operator's client context (mutual TLS), and its certificate."""
    cert, key = DevPKI(certs).issue_operator(PEER_HOST, [PEER_DOMAIN], filename=filename)
    tls = client_context(ca=certs / "ca.crt", cert=cert, key=key, resume=True)
    assert isinstance(tls, ResumingContext)
    return tls, cert


async def _connected(port: int, tls: ResumingContext) -> tuple[aiosmtplib.SMTP, bool]:
    """An MX connection after STARTTLS and EHLO, its session remembered; and whether
    the handshake resumed the previous one."""
    client = aiosmtplib.SMTP(
        hostname="localhost", port=port, start_tls=False, timeout=30, tls_context=tls
    )
    await client.connect()
    try:
        await client.starttls()
        await client.ehlo()
    except BaseException:
        client.close()
        raise
    ssl_object = client.get_transport_info("ssl_object")
    tls.remember("localhost", ssl_object)
    return client, ssl_object.session_reused


async def _send(port: int, tls: ResumingContext, subject: str) -> bool:
    """A message from the peer to Marie on a connection of its own; whether resumed."""
    client, reused = await _connected(port, tls)
    try:
        await client.sendmail(PEER_PRO, [MARIE], message(PEER_PRO, MARIE, subject))
    finally:
        client.close()
    return reused


async def _greeted_over_implicit_tls(port: int, tls: ResumingContext) -> None:
    client = aiosmtplib.SMTP(
        hostname="localhost", port=port, use_tls=True, timeout=30, tls_context=tls
    )
    try:
        await client.connect()
        await client.ehlo()
    finally:
        client.close()


async def test_an_operator_that_reconnects_resumes_its_session_and_is_still_known(
    mss: Running,
) -> None:
    await mss.trust(PEER_DOMAIN)
    await mss.add_pro(MARIE, password=None)
    tls, _ = _operator_tls(mss.data_dir / "certs")
    resumed = [await _send(mss.ports["mx"], tls, f"Avis {n}") for n in range(3)]
    assert resumed == [False, True, True]
    # delivered on the resumed sessions too: the MX knew the operator's certificate
    assert len(await mss.inbox(MARIE)) == 3


async def test_a_session_from_before_a_revocation_is_not_resumed(mss: Running) -> None:
    await mss.trust(PEER_DOMAIN)
    await mss.add_pro(MARIE, password=None)
    certs = mss.data_dir / "certs"
    tls, cert = _operator_tls(certs, filename="revoked-operator")
    for expected in (False, True):  # a session to offer, and proof it would be resumed
        client, reused = await _connected(mss.ports["mx"], tls)
        client.close()
        assert reused is expected
    DevPKI(certs).revoke(cert)
    assert mss.app.mail is not None
    assert await mss.app.mail.refresh_tls()  # what the server does every minute
    with pytest.raises(REFUSED):
        await _send(mss.ports["mx"], tls, "Révoqué")  # offers the old session
    assert "localhost" in tls._sessions  # remembered, so offered by `wrap_bio`
    assert await mss.inbox(MARIE) == []


async def test_a_worker_started_after_a_crl_change_uses_the_new_crl(instance: Path) -> None:
    """The supervisor builds the contexts once; a worker it starts again later (after
    a crash) must not serve the CRL of that time."""
    certs = instance / "certs"
    tls, cert = _operator_tls(certs, filename="revoked-before-the-restart")

    def built_then_revoked(settings: Settings) -> TLSContexts:
        contexts = tls_contexts(settings)  # the supervisor's, at its start
        DevPKI(certs).revoke(cert)  # then a new CRL, before this worker starts
        return contexts

    async with running(instance, tls_from=built_then_revoked) as mss:
        await mss.trust(PEER_DOMAIN)
        await mss.add_pro(MARIE, password=None)
        with pytest.raises(REFUSED):
            await _send(mss.ports["mx"], tls, "Révoqué")
        # implicit TLS (465): the context as the worker refreshed it at its start
        with pytest.raises(REFUSED):
            await _greeted_over_implicit_tls(mss.ports["submissions"], tls)
        assert await mss.inbox(MARIE) == []


async def test_a_resumed_session_of_an_expired_certificate_is_refused(
    instance: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each resumption brings a new ticket, and a resumed handshake checks no date: the
    server checks the certificate's own dates on every connection."""
    certs = instance / "certs"
    real_now = pki._now
    # issued so as to expire in 3 s (the dev PKI's operator certificates last 3 years)
    issued_at = real_now() - dt.timedelta(days=3 * 365) + dt.timedelta(seconds=3)
    monkeypatch.setattr(pki, "_now", lambda: issued_at)
    tls, cert = _operator_tls(certs, filename="short-lived")
    monkeypatch.undo()
    expiry = pki.load_certificate(cert).not_valid_after_utc
    async with running(instance) as mss:
        await mss.trust(PEER_DOMAIN)
        await mss.add_pro(MARIE, password=None)
        assert await _send(mss.ports["mx"], tls, "Valide") is False
        await asyncio.sleep((expiry - dt.datetime.now(dt.UTC)).total_seconds() + 1.0)
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await _send(mss.ports["mx"], tls, "Expiré")  # resumes the session of before
        assert refused.value.code == 530
        assert len(await mss.inbox(MARIE)) == 1


@pytest.mark.slow
async def test_sessions_resume_with_either_worker_of_mss_serve(instance: Path) -> None:
    """The kernel spreads new connections over the workers (`SO_REUSEPORT`): with a
    session key per worker, a ticket of one was refused by the other."""
    tls, _ = _operator_tls(instance / "certs")
    server = _serve_with_workers(instance)
    try:
        port = wait_ready(server)["mx"]
        resumed, replies = [], []
        for _ in range(10):
            client, reused = await _connected(port, tls)
            try:
                reply = await client.execute_command(b"MAIL", f"FROM:<{PEER_PRO}>".encode())
                replies.append(reply.code)
            finally:
                client.close()
            resumed.append(reused)
        assert stop_server(server) == 0
    finally:
        server.kill()
    assert resumed == [False] + [True] * 9
    # the certificate came with each resumed session: refused for the whitelist (550,
    # empty here), not for the lack of an IGC-Santé certificate (530)
    assert replies == [550] * 10


async def test_a_session_is_offered_to_the_same_server_name_only(mss: Running) -> None:
    tls, _ = _operator_tls(mss.data_dir / "certs")
    client, reused = await _connected(mss.ports["mx"], tls)
    client.close()
    assert not reused and list(tls._sessions) == ["localhost"]
    other = aiosmtplib.SMTP(
        hostname="mail.pro.mssante.test", port=mss.ports["mx"], start_tls=False, timeout=30,
        tls_context=tls,
    )  # fmt: skip
    await other.connect(hostname="127.0.0.1")
    try:
        await other.starttls(server_hostname="mail.pro.mssante.test")
        assert not other.get_transport_info("ssl_object").session_reused
    finally:
        other.close()
