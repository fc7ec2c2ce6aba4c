"""A stand-in for HAProxy's `send-proxy`/`send-proxy-v2` in tests: a TCP relay that opens
each connection to an mss door from a chosen source address and starts it with a PROXY
header naming a chosen client, so that real clients (smtplib, imaplib, httpx) can talk
through it. Headers are built by the `proxy-protocol` library (what mss reads with)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from ipaddress import ip_address

from proxyprotocol.result import ProxyResultIPv4, ProxyResultIPv6
from proxyprotocol.v1 import ProxyProtocolV1
from proxyprotocol.v2 import ProxyProtocolV2


def header(
    client: str, *, version: int = 2, client_port: int = 40000, dest_port: int = 25
) -> bytes:
    """The PROXY header (v1 or v2) saying `client` connected to 127.0.0.1."""
    source, dest = ip_address(client), ip_address("127.0.0.1" if ":" not in client else "::1")
    result: ProxyResultIPv4 | ProxyResultIPv6
    if source.version == 4:
        result = ProxyResultIPv4(
            (source, client_port), (dest, dest_port), protocol=socket.SOCK_STREAM
        )  # type: ignore[arg-type]
    else:
        result = ProxyResultIPv6(
            (source, client_port), (dest, dest_port), protocol=socket.SOCK_STREAM
        )  # type: ignore[arg-type]
    return (ProxyProtocolV2() if version == 2 else ProxyProtocolV1()).pack(result)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


@contextlib.asynccontextmanager
async def relay(
    target_port: int, client: str, *, source: str = "127.0.0.1", version: int = 2
) -> AsyncIterator[int]:
    """Listen on an ephemeral loopback port; yield it. Each connection is relayed to
    `target_port` from `source`, after a PROXY header naming `client`."""

    async def serve(down_r: asyncio.StreamReader, down_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", target_port, local_addr=(source, 0))
        up_w.write(header(client, version=version, dest_port=target_port))
        await asyncio.gather(_pipe(down_r, up_w), _pipe(up_r, down_w))

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
