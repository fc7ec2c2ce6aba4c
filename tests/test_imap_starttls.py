"""IMAP STARTTLS injection (issue 14, RFC 3501 §6.2.1): whatever a client sends in clear
after STARTTLS, in the same packet, before the handshake, is thrown away; nothing of it
is read as a command once TLS is up (a smuggled cleartext LOGIN must not log in)."""

from __future__ import annotations

import asyncio

import pytest

from mss.testing.imapclient import RawIMAP

from .harness import PASSWORD, Running
from .test_imap_commands import USER, connect, mailbox

__all__ = ["mailbox"]  # a fixture shared with test_imap_commands.py


async def _tls(client: RawIMAP, mss: Running) -> None:
    loop = asyncio.get_running_loop()
    transport = client.writer.transport
    tls = await loop.start_tls(
        transport, transport.get_protocol(), mss.client_tls(), server_hostname="localhost"
    )
    client.writer._transport = tls  # type: ignore[attr-defined]
    client.reader._transport = tls  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "smuggled",
    [
        f'b LOGIN "{USER}" "{PASSWORD}"\r\n'.encode(),
        f'b LOGIN "{USER}" "{PASSWORD}"\r\nc SELECT INBOX\r\n'.encode(),
        b"b NOOP\r\n",
        b"b LOGIN {" + str(len(USER)).encode() + b"+}\r\n" + USER.encode() + b" x\r\n",
        f'b LOGIN "{USER}" "{PASSWORD}" '.encode(),  # a partial line: under TLS it would go on
    ],
)
async def test_starttls_throws_away_what_was_sent_in_clear_after_it(
    mailbox: Running, smuggled: bytes
) -> None:
    client = await connect(mailbox, "imap")
    await client.send(b"a STARTTLS\r\n" + smuggled)
    assert (await client.read_line()).startswith(b"a OK")
    await _tls(client, mailbox)
    caps = await client.command("CAPABILITY")
    assert caps.ok
    assert all(not line.startswith((b"b ", b"c ")) for line in caps.lines)
    assert b"AUTH=PLAIN" in caps.lines[0]  # still not logged in: login mechanisms offered
    assert (await client.command("SELECT INBOX")).status == "BAD"  # needs authentication
    await client.login(USER, PASSWORD)  # and a login under TLS works
    await client.close()
