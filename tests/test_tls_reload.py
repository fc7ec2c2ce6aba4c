"""A new CRL or a renewed certificate reaches every door of a running server at the next
refresh (`Mail.refresh_tls`, every minute): the STARTTLS doors, HTTPS, and the
implicit-TLS doors (465, 993), which read the context for each connection as the
others do."""

from __future__ import annotations

import asyncio
import ssl

from mss.store.models import AccountKind

from .harness import Running

REFUSED = (ssl.SSLError, ConnectionError)  # a revoked certificate, refused in the handshake


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


async def test_app_mailbox_certificate_revoked_while_serving_is_refused_on_imaps(
    mss: Running,
) -> None:
    """An APP mailbox authenticates by its certificate (DOMAIN.md §1), on 993 too. A new
    CRL reaches the implicit-TLS doors at the next refresh, as it reaches STARTTLS: 993
    kept the context it started with, so a revoked certificate still logged in there
    until the worker's restart. Another certificate is still served."""
    revoked_box, kept_box = "lgc@hopital.mssante.test", "robot@hopital.mssante.test"
    tls = {}
    for address in (revoked_box, kept_box):
        await mss.add_pro(address, password=None, kind=AccountKind.APPLICATIVE)
        cert, key = mss.pki.issue_applicative(address)
        tls[address] = (mss.client_tls(cert, key), cert)
    port = mss.ports["imaps"]
    assert (await _imaps_external(port, tls[revoked_box][0])).startswith(b"a OK")
    mss.pki.revoke(tls[revoked_box][1])
    assert mss.app.mail is not None
    assert await mss.app.mail.refresh_tls()  # what the server does every minute
    try:
        answer = await _imaps_external(port, tls[revoked_box][0])
    except REFUSED:
        answer = b"refused in the handshake"
    assert not answer.startswith(b"a OK"), answer
    assert (await _imaps_external(port, tls[kept_box][0])).startswith(b"a OK")
