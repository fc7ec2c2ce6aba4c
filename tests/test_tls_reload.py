"""A new CRL or a renewed certificate reaches every door of a running server at the next
refresh (`Mail.refresh_tls`, every minute): the STARTTLS doors, HTTPS, and the
implicit-TLS doors (465, 993), which read the context for each connection as the
others do."""

from __future__ import annotations

import asyncio
import ssl

import aiosmtplib
import pytest

from mss.store.models import AccountKind

from .harness import Running

REFUSED = (ssl.SSLError, ConnectionError, aiosmtplib.SMTPException)  # in the handshake


async def _imaps_external(port: int, tls: ssl.SSLContext) -> bytes:
    """IMAPS (993) with a client certificate: the tagged answer to AUTHENTICATE EXTERNAL."""
    reader, writer = await asyncio.open_connection(
        "localhost", port, ssl=tls, server_hostname="localhost"
    )
    try:
        await reader.readline()  # the greeting
        writer.write(b"a AUTHENTICATE EXTERNAL =\r\n")
        while not (line := await reader.readline()).startswith(b"a "):
            if not line:
                raise ConnectionError("closed by the server")
        return line
    finally:
        writer.close()


async def _logs_in_with_certificate(mss: Running, door: str, tls: ssl.SSLContext) -> bool:
    """Whether the certificate logs in with EXTERNAL on `door` (993 or 465); False when it
    is refused, in the handshake or at the login."""
    try:
        if door == "imaps":
            return (await _imaps_external(mss.ports["imaps"], tls)).startswith(b"a OK")
        client = aiosmtplib.SMTP(
            hostname="localhost", port=mss.ports[door], use_tls=True, tls_context=tls, timeout=30
        )
        await client.connect()
        try:
            await client.ehlo()
            code, _ = await client.execute_command(b"AUTH", b"EXTERNAL", b"=")
            return code == 235
        finally:
            client.close()
    except REFUSED:
        return False


@pytest.mark.parametrize("door", ["imaps", "submissions"])
async def test_app_mailbox_certificate_revoked_while_serving_is_refused_on_implicit_tls(
    mss: Running, door: str
) -> None:
    """An APP mailbox authenticates by its certificate (DOMAIN.md §1), on 993 and 465 too.
    A new CRL reaches the implicit-TLS doors at the next refresh, as it reaches STARTTLS:
    993 kept the context it started with, so a revoked certificate still logged in there
    until the worker's restart. Another certificate is still served."""
    revoked_box, kept_box = "lgc@hopital.mssante.test", "robot@hopital.mssante.test"
    tls = {}
    for address in (revoked_box, kept_box):
        await mss.add_pro(address, password=None, kind=AccountKind.APPLICATIVE)
        cert, key = mss.pki.issue_applicative(address)
        tls[address] = (mss.client_tls(cert, key), cert)
    assert await _logs_in_with_certificate(mss, door, tls[revoked_box][0])
    mss.pki.revoke(tls[revoked_box][1])
    assert mss.app.mail is not None
    assert await mss.app.mail.refresh_tls()  # what the server does every minute
    assert not await _logs_in_with_certificate(mss, door, tls[revoked_box][0])
    assert await _logs_in_with_certificate(mss, door, tls[kept_box][0])
