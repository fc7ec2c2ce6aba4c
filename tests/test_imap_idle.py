"""IDLE and TLS as held cheaply (mss/imap/state.py `_wait_for_done`, mss/security/
tls_transport.py): every change reaches an idling client, and TLS connections that
share one read buffer each get their own bytes."""

from __future__ import annotations

import asyncio

from mss.testing.imapclient import RawIMAP

from .harness import PASSWORD, Running
from .test_imap_commands import SIMPLE, USER, connect, deliver, mailbox, selected

__all__ = ["mailbox"]  # the fixture, used by name


async def _idling(mss: Running) -> RawIMAP:
    client = await connect(mss)
    await client.login(USER, PASSWORD)
    await selected(client)
    await client.send(b"i1 IDLE\r\n")
    assert (await client.read_line()).startswith(b"+ ")
    return client


async def _exists(client: RawIMAP) -> bytes:
    """The next EXISTS line (RECENT and others may follow it)."""
    while not (line := await asyncio.wait_for(client.read_line(), 10)).endswith(b" EXISTS\r\n"):
        pass
    return line


async def test_idle_hears_each_of_several_deliveries(mailbox: Running) -> None:
    """A change told while idling, then another: both heard, then DONE ends it."""
    client = await _idling(mailbox)
    for n, expected in ((1, b"* 3 EXISTS\r\n"), (2, b"* 4 EXISTS\r\n")):
        await deliver(mailbox, SIMPLE.replace(b"simple@", f"idle{n}@".encode()))
        assert await _exists(client) == expected
    await client.send(b"DONE\r\n")
    assert (await client.until("i1")).ok
    assert (await client.command("NOOP")).ok
    await client.close()


async def test_many_idle_sessions_all_hear_one_message(mailbox: Running) -> None:
    clients = [await _idling(mailbox) for _ in range(20)]
    await deliver(mailbox, SIMPLE.replace(b"simple@", b"all@"))
    lines = await asyncio.gather(*(_exists(c) for c in clients))
    assert set(lines) == {b"* 3 EXISTS\r\n"}
    for client in clients:
        await client.send(b"DONE\r\n")
        assert (await client.until("i1")).ok
        await client.close()


async def test_tls_sessions_appending_at_once_each_store_their_own_bytes(
    mailbox: Running,
) -> None:
    """Implicit-TLS connections read through one shared buffer: big literals sent at
    the same time by several clients arrive intact, each in its own message."""
    bodies = [b"Subject: part %d\r\n\r\n" % n + (b"%d" % n) * 200_000 + b"\r\n" for n in range(4)]

    async def append(body: bytes) -> None:
        client = await connect(mailbox)
        await client.login(USER, PASSWORD)
        reply = await client.command(f"APPEND Archive {{{len(body)}+}}\r\n".encode() + body)
        assert reply.ok, reply.tagged
        await client.close()

    await asyncio.gather(*(append(body) for body in bodies))
    reader = await connect(mailbox)
    await reader.login(USER, PASSWORD)
    await selected(reader, "Archive")
    reply = await reader.command("FETCH 1:* BODY.PEEK[]")
    stored = sorted(line.split(b"}\r\n", 1)[1] for line in reply.untagged("FETCH"))
    assert [s[: len(b)] for s, b in zip(stored, sorted(bodies), strict=True)] == sorted(bodies)
    await reader.close()
