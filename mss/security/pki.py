"""A development PKI modelled on IGC-Santé, and certificate → identity.

IGC-Santé (the ANS certificate authority of the health sector) has a root and
intermediate authorities per domain of use: persons (CPS cards of health
professionals) and organisations (servers, software). The dev PKI mirrors that:

    MSS DEV AC RACINE IGC-SANTE
    ├── MSS DEV AC IGC-SANTE FORTE PERSONNES          professionals (CN = national id)
    └── MSS DEV AC IGC-SANTE ELEMENTAIRE ORGANISATIONS servers, operators, APP mailboxes

Certificates, as this module issues and reads them:
- professional: subject CN is the national id (`8` + RPPS, or `0` + ADELI),
  SN/GN the names; EKU clientAuth.
- applicative mailbox (BAL `APP`): subject CN and SAN rfc822Name are the
  mailbox address; EKU clientAuth.
- server / operator: SAN dNSName for the host and each domain; EKU serverAuth
  and clientAuth (the same certificate authenticates an operator's MX and its
  relay client in mutual TLS, as IGC-Santé SSL_SERV certificates do for MSSanté).

Keys are ECDSA P-256 (fast handshakes); the CRLs of the three authorities are
in `crl.pem`, refreshed whenever the PKI is checked and they near expiry. The
files live in `<data-dir>/certs/` and never enter the repository.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mss.errors import MssError

ROOT = "root"
PERSONNES = "ac-personnes"
ORGANISATIONS = "ac-organisations"
AUTHORITIES = {
    ROOT: "MSS DEV AC RACINE IGC-SANTE",
    PERSONNES: "MSS DEV AC IGC-SANTE FORTE PERSONNES",
    ORGANISATIONS: "MSS DEV AC IGC-SANTE ELEMENTAIRE ORGANISATIONS",
}
CA_BUNDLE = "ca.crt"
CRL_FILE = "crl.pem"
REVOKED_FILE = "revoked.json"
ISSUED_DIR = "issued"
CRL_LIFETIME = dt.timedelta(days=30)
CRL_REFRESH_MARGIN = dt.timedelta(days=7)

_NATIONAL_ID_RE = re.compile(r"(8\d{11}|0\d{9})")

IdentityKind = Literal["professional", "applicative", "operator"]


@dataclass(frozen=True, slots=True)
class CertIdentity:
    """Who a client certificate names, as mss understands it."""

    kind: IdentityKind
    subject: str
    national_id: str | None = None
    address: str | None = None
    domains: tuple[str, ...] = ()

    @property
    def rpps(self) -> str | None:
        if self.national_id and self.national_id.startswith("8"):
            return self.national_id[1:]
        return None


class CertificateError(MssError):
    """A certificate that mss cannot map to an identity, or cannot issue or revoke."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def _write_certs(path: Path, certs: Sequence[x509.Certificate]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))


def load_certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError(f"{path} is not an EC private key")
    return key


def _name(
    cn: str, ou: str | None = None, extra: Sequence[x509.NameAttribute[str]] = ()
) -> x509.Name:
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "MSS DEV IGC-SANTE"),
    ]
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.extend(extra)
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


class DevPKI:
    """The dev PKI in one folder; every method is idempotent or explicit."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def path(self, name: str, suffix: str) -> Path:
        return self.dir / f"{name}{suffix}"

    @property
    def ca_bundle(self) -> Path:
        return self.dir / CA_BUNDLE

    @property
    def crl(self) -> Path:
        return self.dir / CRL_FILE

    @property
    def root_certificate(self) -> Path:
        return self.path(ROOT, ".crt")

    def exists(self) -> bool:
        return all(self.path(n, ".crt").exists() for n in AUTHORITIES)

    # --- authorities ---------------------------------------------------------------------

    def ensure(self, hostname: str, domains: Sequence[str]) -> list[str]:
        """Create what is missing (authorities, server certificate, CRL); list it."""
        created: list[str] = []
        if not self.exists():
            self._create_authorities()
            created.append("authorities")
        if not self.path("server", ".crt").exists():
            self.issue_server("server", hostname, domains)
            created.append("server certificate")
        if self._crl_needs_refresh():
            self.write_crl()
            created.append("CRL")
        return created

    def _create_authorities(self) -> None:
        now = _now()
        root_key = _new_key()
        root_name = _name(AUTHORITIES[ROOT])
        root = self._build(
            subject=root_name,
            issuer=root_name,
            public_key=root_key.public_key(),
            signer=root_key,
            not_after=now + dt.timedelta(days=365 * 20),
            ca_path_length=1,
        )
        _write_key(self.path(ROOT, ".key"), root_key)
        _write_certs(self.path(ROOT, ".crt"), [root])
        bundle = [root]
        for name in (PERSONNES, ORGANISATIONS):
            key = _new_key()
            cert = self._build(
                subject=_name(AUTHORITIES[name]),
                issuer=root_name,
                public_key=key.public_key(),
                signer=root_key,
                not_after=now + dt.timedelta(days=365 * 10),
                ca_path_length=0,
            )
            _write_key(self.path(name, ".key"), key)
            _write_certs(self.path(name, ".crt"), [cert])
            bundle.append(cert)
        _write_certs(self.ca_bundle, bundle)
        self._save_revoked({})

    @staticmethod
    def _build(
        *,
        subject: x509.Name,
        issuer: x509.Name,
        public_key: ec.EllipticCurvePublicKey,
        signer: ec.EllipticCurvePrivateKey,
        not_after: dt.datetime,
        ca_path_length: int | None = None,
        san: Sequence[x509.GeneralName] = (),
        eku: Sequence[x509.ObjectIdentifier] = (),
    ) -> x509.Certificate:
        now = _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(not_after)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
                critical=False,
            )
        )
        is_ca = ca_path_length is not None
        builder = builder.add_extension(
            x509.BasicConstraints(ca=is_ca, path_length=ca_path_length), critical=True
        ).add_extension(
            x509.KeyUsage(
                digital_signature=not is_ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=not is_ca,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(san)), critical=False)
        if eku:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
        return builder.sign(signer, hashes.SHA256())

    def _issue(
        self,
        authority: str,
        filename: str,
        subject: x509.Name,
        san: Sequence[x509.GeneralName],
        eku: Sequence[x509.ObjectIdentifier],
        days: int = 3 * 365,
    ) -> tuple[Path, Path]:
        issuer_cert = load_certificate(self.path(authority, ".crt"))
        issuer_key = _load_key(self.path(authority, ".key"))
        key = _new_key()
        cert = self._build(
            subject=subject,
            issuer=issuer_cert.subject,
            public_key=key.public_key(),
            signer=issuer_key,
            not_after=_now() + dt.timedelta(days=days),
            san=san,
            eku=eku,
        )
        cert_path = self.dir / f"{filename}.crt"
        key_path = self.dir / f"{filename}.key"
        _write_key(key_path, key)
        _write_certs(cert_path, [cert, issuer_cert])  # leaf + chain, as TLS peers send it
        return cert_path, key_path

    # --- leaf certificates ---------------------------------------------------------------

    def issue_server(
        self, filename: str, hostname: str, domains: Sequence[str], *, loopback: bool = True
    ) -> tuple[Path, Path]:
        """A server/operator certificate: serverAuth + clientAuth for mutual TLS."""
        # The development server's: "127.0.0.1" also as a dNSName, since some clients
        # (isync/mbsync) match the host they were given against dNSNames only, never the
        # IP addresses below; not an operator's (its dNSNames are the domains it speaks for)
        loopback_name = ["127.0.0.1"] if loopback else []
        names = list(dict.fromkeys([hostname, *domains, "localhost", *loopback_name]))
        san: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
        san += [
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
        return self._issue(
            ORGANISATIONS,
            filename,
            _name(hostname, "SERV SSL"),
            san,
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        )

    def issue_professional(
        self, national_id: str, family: str, given: str, filename: str | None = None
    ) -> tuple[Path, Path]:
        """A professional's authentication certificate, CN = national id (8 + RPPS)."""
        if not _NATIONAL_ID_RE.fullmatch(national_id):
            raise CertificateError(
                f"national id {national_id!r} is not 8+RPPS (12) or 0+ADELI (10)"
            )
        extra = [
            x509.NameAttribute(NameOID.SURNAME, family),
            x509.NameAttribute(NameOID.GIVEN_NAME, given),
        ]
        return self._issue(
            PERSONNES,
            f"{ISSUED_DIR}/{filename or 'pro-' + national_id}",
            _name(national_id, "PS", extra),
            [],
            [ExtendedKeyUsageOID.CLIENT_AUTH],
        )

    def issue_applicative(self, address: str, filename: str | None = None) -> tuple[Path, Path]:
        """The certificate of an applicative mailbox (BAL APP): CN and SAN are its address."""
        return self._issue(
            ORGANISATIONS,
            f"{ISSUED_DIR}/{filename or 'app-' + address}",
            _name(address, "ORG AUTH_CLI"),
            [x509.RFC822Name(address)],
            [ExtendedKeyUsageOID.CLIENT_AUTH],
        )

    def issue_operator(
        self, hostname: str, domains: Sequence[str], filename: str | None = None
    ) -> tuple[Path, Path]:
        """The certificate of another operator of the trust space (tests, second instance)."""
        return self.issue_server(
            f"{ISSUED_DIR}/{filename or 'operator-' + hostname}",
            hostname,
            domains,
            loopback=False,
        )

    # --- revocation ----------------------------------------------------------------------

    def _load_revoked(self) -> dict[str, list[int]]:
        path = self.dir / REVOKED_FILE
        if not path.exists():
            return {}
        data: dict[str, list[int]] = json.loads(path.read_text())
        return data

    def _save_revoked(self, revoked: dict[str, list[int]]) -> None:
        (self.dir / REVOKED_FILE).write_text(json.dumps(revoked, indent=2))

    def revoke(self, cert_path: Path) -> int:
        """Revoke a certificate issued here; rewrite the CRL. Returns its serial."""
        cert = load_certificate(cert_path)
        authority = self._authority_of(cert)
        revoked = self._load_revoked()
        serials = revoked.setdefault(authority, [])
        if cert.serial_number not in serials:
            serials.append(cert.serial_number)
        self._save_revoked(revoked)
        self.write_crl()
        return cert.serial_number

    def _authority_of(self, cert: x509.Certificate) -> str:
        for name in AUTHORITIES:
            if load_certificate(self.path(name, ".crt")).subject == cert.issuer:
                return name
        raise CertificateError("the certificate was not issued by this PKI")

    def write_crl(self) -> None:
        revoked = self._load_revoked()
        now = _now()
        pems: list[bytes] = []
        for name in AUTHORITIES:
            cert = load_certificate(self.path(name, ".crt"))
            key = _load_key(self.path(name, ".key"))
            builder = (
                x509.CertificateRevocationListBuilder()
                .issuer_name(cert.subject)
                .last_update(now - dt.timedelta(minutes=5))
                .next_update(now + CRL_LIFETIME)
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
                    critical=False,
                )
                .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
            )
            for serial in revoked.get(name, []):
                builder = builder.add_revoked_certificate(
                    x509.RevokedCertificateBuilder()
                    .serial_number(serial)
                    .revocation_date(now - dt.timedelta(minutes=5))
                    .build()
                )
            pems.append(builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
        tmp = self.crl.with_suffix(".tmp")
        tmp.write_bytes(b"".join(pems))
        os.replace(tmp, self.crl)

    def _crl_needs_refresh(self) -> bool:
        if not self.crl.exists():
            return True
        crl = x509.load_pem_x509_crl(self.crl.read_bytes())
        next_update = crl.next_update_utc
        return next_update is None or next_update - _now() < CRL_REFRESH_MARGIN


# --- certificate → identity ----------------------------------------------------------------


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


def identity_of(cert: x509.Certificate) -> CertIdentity:
    """Map a verified client certificate to the identity it names.

    A CN that is a national id makes a professional; an rfc822Name an applicative
    mailbox; dNSNames an operator. Anything else is refused.
    """
    subject = cert.subject.rfc4514_string()
    cn = _attribute(cert.subject, NameOID.COMMON_NAME) or ""
    if _NATIONAL_ID_RE.fullmatch(cn):
        return CertIdentity("professional", subject, national_id=cn)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise CertificateError(f"certificate {subject} names no identity") from None
    emails = san.get_values_for_type(x509.RFC822Name)
    if emails:
        return CertIdentity("applicative", subject, address=emails[0].lower())
    dns = san.get_values_for_type(x509.DNSName)
    if dns:
        return CertIdentity("operator", subject, domains=tuple(d.lower() for d in dns))
    raise CertificateError(f"certificate {subject} names no identity")


def identity_of_der(der: bytes) -> CertIdentity:
    return identity_of(x509.load_der_x509_certificate(der))
