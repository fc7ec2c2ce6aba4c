"""asyncio's TLS layer for the server's doors, without a read buffer per connection.

`asyncio.sslproto.SSLProtocol` keeps a read buffer of `max_size` bytes for every
connection (256 KiB in CPython 3.11+, zero-filled, so resident). It only lends it
to the socket: the transport calls `get_buffer`, `recv_into` fills it and
`buffer_updated` copies the bytes into the connection's `ssl.MemoryBIO` at once,
all in one synchronous callback. Nothing is left in the buffer between two calls,
so every connection served by one thread can borrow the same one: with ten
thousand IMAP IDLE sessions that is 10,000 buffers less (2.5 GB at 256 KiB).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from asyncio import sslproto
from typing import Any

SHARED_READ_SIZE = 256 * 1024  # what asyncio reads from the socket at most per call
RECORD_SIZE = 16 * 1024  # RFC 8446 §5.1: a TLS record's plaintext is at most 2^14 bytes

_per_thread = threading.local()


def _shared_view() -> memoryview:
    """This thread's read buffer (an event loop runs in one thread)."""
    view: memoryview | None = getattr(_per_thread, "view", None)
    if view is None:
        view = _per_thread.view = memoryview(bytearray(SHARED_READ_SIZE))
    return view


class SharedBufferSSLProtocol(sslproto.SSLProtocol):
    """`SSLProtocol` reading the socket into its thread's shared buffer."""

    # what `SSLObject.read` is asked for per call (a record at most), and the size of
    # the buffer the base class allocates in `__init__`, dropped at once below
    max_size = RECORD_SIZE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ssl_buffer_view = _shared_view()
        self._ssl_buffer = self._ssl_buffer_view.obj

    def get_buffer(self, n: int) -> memoryview:
        """The shared buffer: `buffer_updated` copies what was read before returning."""
        view: memoryview = self._ssl_buffer_view
        return view


def share_read_buffers() -> None:
    """Let the TLS layers that code builds as `sslproto.SSLProtocol(...)` (looked up at
    each call) share the buffer too: aiosmtpd's STARTTLS, and asyncio's own client
    connections on the standard loop (uvloop's use its compiled TLS). The implicit-TLS
    doors and IMAP's STARTTLS (`start_tls_server`) build `SharedBufferSSLProtocol`."""
    sslproto.SSLProtocol = SharedBufferSSLProtocol  # type: ignore[misc]


async def start_tls_server(writer: asyncio.StreamWriter, context: ssl.SSLContext) -> None:
    """Upgrade the server side of a stream to TLS (STARTTLS) through
    `SharedBufferSSLProtocol`: asyncio's `loop.start_tls` and `StreamWriter.start_tls`,
    step by step, so that it runs on any event loop and transport. uvloop's own
    `start_tls` takes only uvloop's transports (not the one the PROXY gate hands over)
    and gives each connection a read buffer of its own."""
    loop = asyncio.get_running_loop()
    transport = writer.transport
    protocol = writer._protocol  # type: ignore[attr-defined]  # the stream's, to keep
    await writer.drain()
    waiter = loop.create_future()
    tls = SharedBufferSSLProtocol(
        loop, protocol, context, waiter, server_side=True, call_connection_made=False
    )
    transport.pause_reading()  # type: ignore[attr-defined]  # nothing read before the switch
    transport.set_protocol(tls)
    made = loop.call_soon(tls.connection_made, transport)
    resumed = loop.call_soon(transport.resume_reading)  # type: ignore[attr-defined]
    try:
        await waiter
    except BaseException:
        transport.close()
        made.cancel()
        resumed.cancel()
        raise
    writer._transport = tls._app_transport  # type: ignore[attr-defined]
    # what `StreamWriter.start_tls` ends with: `_replace_writer(writer)` up to Python 3.12,
    # `_replace_transport(transport)` from 3.13 (the writer stays the same one)
    if hasattr(protocol, "_replace_transport"):
        protocol._replace_transport(writer._transport)  # type: ignore[attr-defined]
    else:
        protocol._replace_writer(writer)
