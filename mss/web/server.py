"""Run the FastAPI app with uvicorn inside mss's own event loop.

uvicorn's `serve()` installs its own signal handlers; mss drives start-up and
shutdown itself (`startup`, `main_loop`, `shutdown`) so that one SIGTERM drains
every listener in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class PeerCertificateProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, adding the verified client certificate (DER) of
    the TLS connection to each request's scope: `scope["extensions"]["tls"]
    ["client_cert_der"]` (uvicorn does not pass it on itself)."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        ssl_object = self.transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if der:
            extensions: dict[str, object] = {"tls": {"client_cert_der": der}}
            self.scope["extensions"] = extensions  # type: ignore[typeddict-item]


class WebServer:
    def __init__(
        self,
        app: ASGIApp,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        sock: socket.socket | None = None,
    ) -> None:
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
        self._ssl = ssl_context
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
        self._config.ssl = self._ssl  # our context: mutual TLS and CRL checks
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

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._server.shutdown()
