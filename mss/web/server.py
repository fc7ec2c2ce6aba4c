"""Run the FastAPI app with uvicorn inside mss's own event loop.

The HTTP parser (httptools) refuses a request line holding raw non-ASCII bytes (a
script's `GET /fhir/v2/Practitioner?name=Hélène`): they are percent-encoded before
it sees them, so the app answers (UTF-8 served, anything else refused in the route's
format). What the parser still refuses gets a JSON 400 in French with its English
meaning, not uvicorn's plain text.

uvicorn's `serve()` installs its own signal handlers; mss drives start-up and
shutdown itself (`startup`, `main_loop`, `shutdown`) so that one SIGTERM drains
every listener in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mss.security.http_target import encode_raw_target
from mss.security.proxy_protocol import ProxyGate, ProxyPolicy
from mss.security.tls import peer_certificate_der

BAD_REQUEST = (
    b'{"error":"BadRequest","detail":"requ\\u00eate HTTP invalide (invalid HTTP request)"}'
)


class PeerCertificateProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, adding the verified client certificate (DER) of
    the TLS connection to each request's scope: `scope["extensions"]["tls"]
    ["client_cert_der"]` (uvicorn does not pass it on itself); and the raw non-ASCII
    bytes of request lines percent-encoded (`encode_raw_target`)."""

    _idle = True  # between two requests: the next byte received starts a request line
    _in_line = True  # the next byte received is in a request line

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn asks the socket, which knows only the proxy: the PROXY gate's client wins
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.client = (str(peer[0]), int(peer[1]))

    def data_received(self, data: bytes) -> None:
        was_in_line = False
        if self._in_line:
            end = data.find(b"\n")
            head, rest = (data, b"") if end < 0 else (data[:end], data[end:])
            data = encode_raw_target(head) + rest
            was_in_line = end < 0
        super().data_received(data)
        # only at a request's start: never a byte of headers or body (pipelining included)
        self._in_line = self._idle or was_in_line

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._idle = True

    def send_400_response(self, msg: str) -> None:
        """What the parser refuses: JSON in French with its English meaning."""
        self.logger.info("refused a malformed HTTP request: %s", msg)
        self.transport.write(
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(BAD_REQUEST), BAD_REQUEST)
        )
        self.transport.close()

    def on_message_begin(self) -> None:
        self._idle = False
        super().on_message_begin()
        der = peer_certificate_der(self.transport.get_extra_info("ssl_object"))
        if der:
            extensions: dict[str, object] = {"tls": {"client_cert_der": der}}
            self.scope["extensions"] = extensions  # type: ignore[typeddict-item]


class WebServer:
    def __init__(
        self,
        app: ASGIApp,
        host: str,
        port: int,
        tls: Callable[[], ssl.SSLContext] | None,
        sock: socket.socket | None = None,
        proxy: ProxyPolicy | None = None,
    ) -> None:
        self._proxy = proxy or ProxyPolicy()
        self._shared = sock  # a listening socket bound by the supervisor (several workers)
        self._config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            http=PeerCertificateProtocol,  # httptools: h11 (pure Python) costs more than a lookup
            proxy_headers=False,  # no proxy in front by default (PROXY protocol is the plan)
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=10,
        )
        self._tls = tls  # the context as it is now: a new CRL reaches new connections
        self._server = uvicorn.Server(self._config)
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        for server in self._server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        raise RuntimeError("the web server is not listening")

    async def start(self) -> None:
        self._config.load()
        self._config.ssl = None  # the PROXY gate does TLS with our context (mutual, CRL)
        self._config.http_protocol_class = self._gated_protocol  # type: ignore[assignment]
        self._server.lifespan = self._config.lifespan_class(self._config)
        try:
            await self._server.startup(
                sockets=[self._shared.dup()] if self._shared is not None else None
            )
        except SystemExit:  # uvicorn exits when it cannot bind
            raise OSError(f"cannot listen on {self._config.host}:{self._config.port}") from None
        if not self._server.started:
            raise OSError(f"cannot listen on {self._config.host}:{self._config.port}")
        self._task = asyncio.create_task(self._server.main_loop(), name="web-main-loop")

    def _gated_protocol(self, **kwargs: Any) -> ProxyGate:
        """What uvicorn creates per connection: the PROXY gate, then TLS, then HTTP."""
        return ProxyGate(lambda: PeerCertificateProtocol(**kwargs), self._tls, self._proxy)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._server.shutdown()
