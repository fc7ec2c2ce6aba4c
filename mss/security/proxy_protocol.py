"""The PROXY protocol (HAProxy's `send-proxy` v1 and `send-proxy-v2`) on every door.

A load balancer in TCP mode opens the connection to mss itself; it says who the
client really is in a header sent before anything else (before TLS on implicit-TLS
doors). `ProxyGate` is the first protocol of every accepted connection:

- from an address listed in `[server] proxy_from` the connection MUST start with a
  PROXY header, read with a timeout and a size cap, else it is closed; the client
  address it names becomes the connection's `peername`, so the doors, the login
  throttle, `Received:`, logs and traces all see the real client;
- from any other address, a connection that starts with a PROXY header is closed
  (nobody else may choose the address we record); others go on untouched.

Then the gate hands the connection to the door's protocol, through TLS when the door
is implicit TLS, and steps out of the way. The header's syntax is read by the
`proxy-protocol` library; the exact header length (so that no byte of what follows
is lost) is computed here. Spec: haproxy.org, doc/proxy-protocol.txt (2.6).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from proxyprotocol import (
    ProxyProtocolChecksumError,
    ProxyProtocolIncompleteError,
    ProxyProtocolSyntaxError,
)
from proxyprotocol.detect import ProxyProtocolDetect

from mss.security.tls_transport import SharedBufferSSLProtocol

log = logging.getLogger(__name__)

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"  # spec §2.2
V1_PREFIX = b"PROXY "  # spec §2.1
V1_MAX = 107  # spec §2.1: "a receiver must never accept more than 107 bytes"
V2_MAX = 16 + 1024  # addresses (at most 216 bytes) and the TLVs HAProxy sends fit well
HEADER_TIMEOUT = 5.0  # seconds a trusted proxy has to send the header

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ProtocolFactory = Callable[[], asyncio.BaseProtocol]


class ProxyHeaderError(ValueError):
    """Not a PROXY header, a malformed one, or one too long."""


@dataclass(frozen=True, kw_only=True)
class ProxyPolicy:
    """Which peers are proxies (they must send a header; nobody else may)."""

    networks: tuple[Network, ...] = ()
    timeout: float = HEADER_TIMEOUT

    @classmethod
    def parse(cls, cidrs: Iterable[str], timeout: float = HEADER_TIMEOUT) -> ProxyPolicy:
        return cls(networks=tuple(ipaddress.ip_network(c) for c in cidrs), timeout=timeout)

    def trusts(self, ip: str | None) -> bool:
        if ip is None or not self.networks:
            return False
        try:
            address = ipaddress.ip_address(ip.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


def header_length(data: bytes) -> int | None:
    """The length of the PROXY header at the start of `data`; None while it is incomplete.

    Raises `ProxyHeaderError` when `data` cannot start a PROXY header or the header
    is longer than we accept (so a peer cannot make us buffer more than ~1 KiB)."""
    head = data[: len(V2_SIGNATURE)]
    if V2_SIGNATURE.startswith(head):
        if len(data) < 16:
            return None
        length = int.from_bytes(data[14:16], "big")  # spec §2.2: bytes 15 and 16
        if 16 + length > V2_MAX:
            raise ProxyHeaderError(f"PROXY v2 header of {16 + length} bytes (too long)")
        return 16 + length
    if V1_PREFIX.startswith(data[: len(V1_PREFIX)]):
        end = data.find(b"\r\n", 0, V1_MAX)
        if end >= 0:
            return end + 2
        if len(data) >= V1_MAX:
            raise ProxyHeaderError("PROXY v1 line longer than 107 bytes")
        return None
    raise ProxyHeaderError("no PROXY header")


def client_address(header: bytes) -> tuple[str, int] | None:
    """The client's address named by a complete header, or None when it names none
    (v2 LOCAL: the proxy's own health check; v1 UNKNOWN; a Unix socket): then the
    connection's own address stands (spec §2.1, §2.2)."""
    try:
        result = ProxyProtocolDetect().unpack(header)
    except ProxyProtocolIncompleteError as exc:
        raise ProxyHeaderError("incomplete PROXY header") from exc
    except (ProxyProtocolSyntaxError, ProxyProtocolChecksumError, ValueError) as exc:
        raise ProxyHeaderError(f"malformed PROXY header: {exc or type(exc).__name__}") from exc
    source = result.source if result.proxied else None
    if not isinstance(source, tuple):
        return None
    ip, port = source
    return str(ip), int(port)


def starts_like_a_header(data: bytes) -> bool:
    """Does a connection's first chunk begin a PROXY header (v1 or v2)?"""
    return data.startswith(V1_PREFIX) or data.startswith(V2_SIGNATURE)


LISTEN_BACKLOG = 4096  # connections the kernel queues (and asyncio accepts per wake-up)


async def open_door(
    factory: ProtocolFactory,
    tls: Callable[[], ssl.SSLContext] | None,
    policy: ProxyPolicy,
    *,
    shared: socket.socket | None,
    host: str,
    port: int,
) -> asyncio.Server:
    """Serve `factory` behind the PROXY gate (which does TLS, if any) on the socket the
    supervisor bound for this worker, else on `host:port` (one process). `tls` gives the
    context as it is now, for each connection: a new CRL or a renewed certificate
    reaches the implicit-TLS doors without listening again."""
    gate = functools.partial(ProxyGate, factory, tls, policy)
    loop = asyncio.get_running_loop()
    if shared is not None:  # a copy: closing it (stop) keeps the original
        return await loop.create_server(gate, sock=shared.dup(), backlog=LISTEN_BACKLOG)
    return await loop.create_server(gate, host, port, reuse_address=True, backlog=LISTEN_BACKLOG)


class ProxyGate(asyncio.Protocol):
    """The first protocol of a connection: reads or forbids the PROXY header, then
    hands over to the door's protocol (through TLS on implicit-TLS doors)."""

    def __init__(
        self,
        factory: ProtocolFactory,
        tls: Callable[[], ssl.SSLContext] | None,
        policy: ProxyPolicy,
    ) -> None:
        self._factory = factory
        self._tls = tls
        self._policy = policy
        self._transport: asyncio.Transport | None = None
        self._peer_ip: str | None = None
        self._next: asyncio.BaseProtocol | None = None  # set once handed over
        self._buffer = bytearray()
        self._timer: asyncio.TimerHandle | None = None
        self._seen_as: PeerNamed | None = None  # the transport as the layers above see it

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's are not registered as `asyncio.Transport`)
        self._transport = cast("asyncio.Transport", transport)
        peer = transport.get_extra_info("peername")
        self._peer_ip = str(peer[0]) if isinstance(peer, tuple) and peer else None
        if self._policy.trusts(self._peer_ip):
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._policy.timeout, self._refuse, "no PROXY header")
        else:
            self._hand_over()  # server-first doors greet at once; the gate watches one chunk

    def data_received(self, data: bytes) -> None:
        if self._next is not None:  # an untrusted peer's first chunk
            if starts_like_a_header(data):
                self._refuse("PROXY header from an address not configured as a proxy")
                return
            self._step_aside(data)
            return
        self._buffer += data
        try:
            length = header_length(bytes(self._buffer))
            if length is None or len(self._buffer) < length:
                return
            client = client_address(bytes(self._buffer[:length]))
        except ProxyHeaderError as exc:
            self._refuse(str(exc))
            return
        rest = bytes(self._buffer[length:])
        self._buffer.clear()
        if self._timer is not None:
            self._timer.cancel()
        if client is not None:
            self._set_peer(client)
        if self._hand_over():  # else closed: no TLS context
            self._step_aside(rest)

    def eof_received(self) -> bool | None:
        if self._next is None:
            return None  # closes the transport
        if isinstance(self._next, asyncio.Protocol | asyncio.BufferedProtocol):
            return self._next.eof_received()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._next is not None:
            self._next.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._next is not None:
            self._next.pause_writing()

    def resume_writing(self) -> None:
        if self._next is not None:
            self._next.resume_writing()

    def _set_peer(self, client: tuple[str, int]) -> None:
        """The client address becomes the connection's `peername`, for every layer
        above: they are handed the transport through `PeerNamed`."""
        assert self._transport is not None
        self._seen_as = PeerNamed(self._transport, client)

    def _hand_over(self) -> bool:
        """Start the door's protocol on this transport, through TLS when needed; False if
        the connection was closed instead."""
        assert self._transport is not None
        # the same interface (`PeerNamed` delegates what it does not answer itself)
        transport = cast("asyncio.Transport", self._seen_as or self._transport)
        context = None
        if self._tls is not None:
            try:  # before the door's protocol exists: nothing of it is left waiting
                context = self._tls()
            except Exception:
                log.exception("no TLS context for a connection from %s: closed", self._peer_ip)
                self._transport.abort()
                return False
        inner = self._factory()
        if context is None:
            self._next = inner
            inner.connection_made(transport)
            return True
        assert isinstance(inner, asyncio.Protocol)
        loop = asyncio.get_running_loop()
        # no waiter (None, as asyncio's STARTTLS users do): a failed handshake just closes
        tls = SharedBufferSSLProtocol(loop, inner, context, None, server_side=True)
        self._next = tls
        tls.connection_made(transport)
        return True

    def _step_aside(self, data: bytes) -> None:
        """Let the door's protocol receive directly from now on; give it `data` first."""
        assert self._transport is not None and self._next is not None
        self._transport.set_protocol(self._next)
        if data:
            feed(self._next, data)

    def _refuse(self, reason: str) -> None:
        log.info("connection from %s closed: %s", self._peer_ip or "?", reason)
        if self._transport is not None:
            self._transport.abort()


class PeerNamed:
    """A connection's transport whose `peername` is the client a PROXY header named
    (and `proxy_peername` the proxy's own address); everything else is the transport's.
    A wrapper, because a transport's own extra information is not writable everywhere
    (uvloop's is computed from its socket)."""

    __slots__ = ("_client", "_transport")

    def __init__(self, transport: asyncio.Transport, client: tuple[str, int]) -> None:
        self._transport = transport
        self._client = client

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._client
        if name == "proxy_peername":
            return self._transport.get_extra_info("peername", default)
        return self._transport.get_extra_info(name, default)

    def __getattr__(self, name: str) -> Any:  # write, close, set_protocol, …
        return getattr(self._transport, name)


def feed(protocol: asyncio.BaseProtocol, data: bytes) -> None:
    """Deliver bytes already read to a protocol, buffered (TLS) or not."""
    if isinstance(protocol, asyncio.BufferedProtocol):
        view = memoryview(data)
        while view:
            buffer = memoryview(protocol.get_buffer(len(view)))
            n = min(len(buffer), len(view))
            buffer[:n] = view[:n]
            protocol.buffer_updated(n)
            view = view[n:]
    elif isinstance(protocol, asyncio.Protocol):
        protocol.data_received(data)
