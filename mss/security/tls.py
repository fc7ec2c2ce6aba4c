"""TLS contexts for every listener and client, with mutual TLS and CRL checks.

TLS 1.2 is the minimum (ANS Référentiel #2 for mail clients). Client
certificates are verified against the configured trust anchors (the dev PKI's
authorities here, IGC-Santé in production) and, when a CRL file is configured,
against the CRLs of the whole chain (`VERIFY_CRL_CHECK_CHAIN`).
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from cryptography import x509

from mss.security.pki import CertIdentity, CertificateError, identity_of

ClientCertMode = Literal["none", "optional", "required"]

_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
_CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


def _trust(ctx: ssl.SSLContext, ca: Path | None, crl: Path | None) -> None:
    if ca is not None:
        ctx.load_verify_locations(cafile=str(ca))
    if crl is not None:
        ctx.load_verify_locations(cafile=str(crl))
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN


def server_context(
    cert: Path,
    key: Path,
    *,
    ca: Path | None = None,
    crl: Path | None = None,
    client_cert: ClientCertMode = "none",
    min_version: str = "TLSv1.2",
) -> ssl.SSLContext:
    """A server context; `client_cert` asks for (optional) or demands a client certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _VERSIONS[min_version]
    ctx.load_cert_chain(str(cert), str(key))
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.verify_mode = _CERT_REQS[client_cert]
    if client_cert != "none":
        _trust(ctx, ca, crl)
    return ctx


class ResumingContext(ssl.SSLContext):
    """A client context that offers each server, by name, the TLS session it last
    remembered with it (`remember`), so that a reconnection resumes the session: no
    certificate sent, signed or checked again by either side, as Postfix does with its
    `smtp_tls_session_cache`. Only to the same server name, with this context: a new
    context (renewed certificate, new CRL) starts with none. asyncio's TLS (and so
    aiosmtplib's STARTTLS) wraps its connections with `wrap_bio`, smtplib's with
    `wrap_socket`: both pick the session here (server_hostname given by keyword)."""

    MAX_SERVERS = 1024  # the names remembered, the least recently used forgotten

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # (ssl.SSLContext.__new__ took them)
        super().__init__()
        self._sessions: OrderedDict[str, ssl.SSLSession] = OrderedDict()

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        session = session or self._offered(server_side, server_hostname)
        return super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)

    def wrap_socket(
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        session = session or self._offered(server_side, server_hostname)
        return super().wrap_socket(
            sock, server_side, do_handshake_on_connect, suppress_ragged_eofs, server_hostname,
            session,
        )  # fmt: skip

    def _offered(self, server_side: bool, server_hostname: str | bytes | None) -> Any:
        if server_side or not isinstance(server_hostname, str):
            return None
        return self._sessions.get(server_hostname)

    def remember(self, server_hostname: str, ssl_object: Any) -> None:
        """Keep the session of a connection to `server_hostname` for the next one, or
        forget the one kept if the server's certificate is no longer within its dates
        (a resumed handshake checks none: the next one must be full). Call it once the
        server has spoken after the handshake: TLS 1.3 sends the session's ticket then."""
        if ssl_object is None or ssl_object.context is not self:  # (its sessions only)
            return
        session = ssl_object.session
        if peer_certificate(ssl_object) is None:
            self._sessions.pop(server_hostname, None)
            return
        if session is None or not (session.has_ticket or session.id):
            return
        self._sessions[server_hostname] = session
        self._sessions.move_to_end(server_hostname)
        while len(self._sessions) > self.MAX_SERVERS:
            self._sessions.popitem(last=False)


def remember_session(context: ssl.SSLContext, server_hostname: str, ssl_object: Any) -> None:
    """`ResumingContext.remember`, when `context` is one."""
    if isinstance(context, ResumingContext):
        context.remember(server_hostname, ssl_object)


def client_context(
    *,
    ca: Path | None,
    cert: Path | None = None,
    key: Path | None = None,
    crl: Path | None = None,
    check_hostname: bool = True,
    min_version: str = "TLSv1.2",
    resume: bool = False,
) -> ssl.SSLContext:
    """A client context trusting `ca`, presenting `cert` when given (mutual TLS);
    `resume`: one that offers each server its last session again (`ResumingContext`)."""
    ctx = (ResumingContext if resume else ssl.SSLContext)(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = _VERSIONS[min_version]
    ctx.check_hostname = check_hostname
    ctx.verify_mode = ssl.CERT_REQUIRED
    _trust(ctx, ca, crl)
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key) if key else None)
    return ctx


def peer_certificate(ssl_object: Any) -> x509.Certificate | None:
    """The verified peer certificate of a TLS connection, if any and only within its
    validity dates: a resumed session's handshake checks no certificate, and a chain
    of resumptions, each with a new ticket, could outlive the certificate. (Its
    revocation is another matter: a new CRL makes a new context, whose key refuses the
    tickets of before; see `wiring.tls_contexts`.)"""
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        return None
    cert = x509.load_der_x509_certificate(der)
    now = dt.datetime.now(dt.UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return None
    return cert


def peer_certificate_der(ssl_object: Any) -> bytes | None:
    """`peer_certificate`'s DER, as the connection holds it (the HTTPS door hands it to
    the DMP API): checked, not encoded again."""
    if peer_certificate(ssl_object) is None:
        return None
    der: bytes = ssl_object.getpeercert(binary_form=True)
    return der


def peer_identity(ssl_object: Any) -> CertIdentity | None:
    """The identity of the verified peer certificate of a TLS connection, if any."""
    cert = peer_certificate(ssl_object)
    if cert is None:
        return None
    try:
        return identity_of(cert)
    except CertificateError:
        return None


class ReloadingContext:
    """An SSL context rebuilt when its files change (a renewed certificate, a new CRL).

    Listeners take `current` for each new connection; `refresh` is called
    periodically. A context cannot forget a CRL once loaded, hence a new one.
    """

    def __init__(self, build: Callable[[], ssl.SSLContext], watched: Sequence[Path]) -> None:
        self._build = build
        self._watched = list(watched)
        self._stamps = self._stat()
        self.current = build()

    def _stat(self) -> list[float]:
        return [p.stat().st_mtime if p.exists() else 0.0 for p in self._watched]

    def refresh(self) -> bool:
        """Rebuild if a watched file changed; True when a new context is in use."""
        stamps = self._stat()
        if stamps == self._stamps:
            return False
        self.current = self._build()
        self._stamps = stamps
        return True
