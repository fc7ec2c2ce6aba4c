"""Development certificates from the dev PKI: `mss cert issue|revoke`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mss.admin.pro import national_id
from mss.config import Settings
from mss.core.address import InvalidAddress, is_valid_domain, parse_address
from mss.errors import InputError
from mss.security.pki import CertificateError, DevPKI

Issued = tuple[Path, Path]  # the certificate and its key


def issue_certificate(settings: Settings, kind: str, args: dict[str, str]) -> Issued:
    """Issue a dev certificate: professional, applicative or operator."""
    pki = DevPKI(settings.path(settings.tls.cert).parent)
    if not pki.exists():
        raise InputError("the dev PKI does not exist here (run `mss init`)")
    issue = _ISSUERS.get(kind)
    if issue is None:
        raise InputError(f"unknown certificate kind {kind!r}")
    try:
        return issue(pki, args)
    except (CertificateError, InvalidAddress) as exc:
        raise InputError(str(exc)) from None


def _professional(pki: DevPKI, args: dict[str, str]) -> Issued:
    return pki.issue_professional(
        national_id(args.get("rpps"), args.get("adeli")) or "",
        args.get("family", "DEV"),
        args.get("given", "Professionnel"),
    )


def _applicative(pki: DevPKI, args: dict[str, str]) -> Issued:
    return pki.issue_applicative(str(parse_address(args["address"])))


def _operator(pki: DevPKI, args: dict[str, str]) -> Issued:
    domains = [d.strip().lower() for d in args["domains"].split(",") if d.strip()]
    if not all(is_valid_domain(d) for d in (*domains, args["hostname"])):
        raise InputError("operator certificates need valid host and domain names")
    return pki.issue_operator(args["hostname"], domains)


_ISSUERS: dict[str, Callable[[DevPKI, dict[str, str]], Issued]] = {
    "professional": _professional,
    "applicative": _applicative,
    "operator": _operator,
}


def revoke_certificate(settings: Settings, cert: Path) -> int:
    """Revoke a certificate of the dev PKI and rewrite its CRL; the revoked serial."""
    pki = DevPKI(settings.path(settings.tls.cert).parent)
    try:
        return pki.revoke(cert)
    except (CertificateError, OSError, ValueError) as exc:
        raise InputError(f"cannot revoke {cert}: {exc}") from None
