"""TLS contexts for every listener and client, with mutual TLS and CRL checks.

TLS 1.2 is the minimum (ANS Référentiel #2 for mail clients). Client
certificates are verified against the configured trust anchors (the dev PKI's
authorities here, IGC-Santé in production) and, when a CRL file is configured,
against the CRLs of the whole chain (`VERIFY_CRL_CHECK_CHAIN`).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from mss.security.pki import CertIdentity, CertificateError, identity_of_der

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


def client_context(
    *,
    ca: Path | None,
    cert: Path | None = None,
    key: Path | None = None,
    crl: Path | None = None,
    check_hostname: bool = True,
    min_version: str = "TLSv1.2",
) -> ssl.SSLContext:
    """A client context trusting `ca`, presenting `cert` when given (mutual TLS)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = _VERSIONS[min_version]
    ctx.check_hostname = check_hostname
    ctx.verify_mode = ssl.CERT_REQUIRED
    _trust(ctx, ca, crl)
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key) if key else None)
    return ctx


def peer_identity(ssl_object: Any) -> CertIdentity | None:
    """The identity of the verified peer certificate of a TLS connection, if any."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    try:
        return identity_of_der(der)
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
