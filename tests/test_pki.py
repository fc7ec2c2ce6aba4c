"""The dev PKI (IGC-Santé model) over real TLS handshakes, and certificate → identity."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path

import pytest
from cryptography import x509

from mss.security.pki import CertificateError, DevPKI, identity_of, load_certificate
from mss.security.tls import client_context, peer_identity, server_context

from .conftest import run_mss

RPPS = "99700367909"


def _pki(instance: Path) -> DevPKI:
    return DevPKI(instance / "certs")


async def _handshake(pki: DevPKI, cert: Path | None, key: Path | None) -> str:
    """Connect with mutual TLS; return what the server read of the client's identity."""
    server_ctx = server_context(
        pki.dir / "server.crt",
        pki.dir / "server.key",
        ca=pki.ca_bundle,
        crl=pki.crl,
        client_cert="required",
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        identity = peer_identity(writer.get_extra_info("ssl_object"))
        if identity is None:
            answer = "none"
        else:
            named = identity.national_id or identity.address or ",".join(identity.domains)
            answer = f"{identity.kind} {named}"
        writer.write(answer.encode() + b"\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        ctx = client_context(ca=pki.ca_bundle, cert=cert, key=key)
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ctx, server_hostname="localhost"
        )
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
        finally:
            writer.close()
            with contextlib.suppress(ssl.SSLError, ConnectionError):
                await writer.wait_closed()
        if not line:
            raise ConnectionError("the server closed the connection")
        return line.decode().strip()
    finally:
        server.close()
        await server.wait_closed()


async def test_professional_certificate_authenticates_with_national_id(instance: Path) -> None:
    pki = _pki(instance)
    cert, key = pki.issue_professional("8" + RPPS, "DUPONT", "Jean")
    assert await _handshake(pki, cert, key) == f"professional 8{RPPS}"


async def test_applicative_and_operator_certificates_map_to_their_identity(instance: Path) -> None:
    pki = _pki(instance)
    cert, key = pki.issue_applicative("lgc@hopital.mssante.test")
    assert await _handshake(pki, cert, key) == "applicative lgc@hopital.mssante.test"
    cert, key = pki.issue_operator("mx.autre.mssante.test", ["autre.mssante.test"])
    assert (
        await _handshake(pki, cert, key)
        == "operator mx.autre.mssante.test,autre.mssante.test,localhost"
    )


async def test_revoked_certificate_is_refused(instance: Path) -> None:
    pki = _pki(instance)
    cert, key = pki.issue_professional("8" + RPPS, "DUPONT", "Jean")
    assert await _handshake(pki, cert, key) == f"professional 8{RPPS}"
    pki.revoke(cert)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await _handshake(pki, cert, key)


async def test_certificate_from_another_authority_is_refused(
    instance: Path, tmp_path: Path
) -> None:
    stranger = DevPKI(tmp_path / "other-pki")
    stranger.ensure("mail.evil.test", ["evil.test"])
    cert, key = stranger.issue_professional("8" + RPPS, "DUPONT", "Jean")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await _handshake(_pki(instance), cert, key)


async def test_client_without_certificate_is_refused_when_required(instance: Path) -> None:
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await _handshake(_pki(instance), None, None)


def test_hierarchy_is_modelled_on_igc_sante(instance: Path) -> None:
    pki = _pki(instance)
    root = load_certificate(pki.root_certificate)
    assert "AC RACINE IGC-SANTE" in root.subject.rfc4514_string()
    server = x509.load_pem_x509_certificates((pki.dir / "server.crt").read_bytes())
    assert "ELEMENTAIRE ORGANISATIONS" in server[0].issuer.rfc4514_string()
    names = server[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"pro.mssante.test", "hopital.mssante.test", "patient.mssante.fr", "localhost"} <= set(
        names.get_values_for_type(x509.DNSName)
    )
    crls = (pki.dir / "crl.pem").read_bytes().count(b"BEGIN X509 CRL")
    assert crls == 3


def test_certificate_without_identity_is_refused(instance: Path) -> None:
    root = load_certificate(_pki(instance).root_certificate)
    with pytest.raises(CertificateError):
        identity_of(root)


def test_professional_identity_exposes_rpps(instance: Path) -> None:
    cert, _ = _pki(instance).issue_professional("8" + RPPS, "DUPONT", "Jean")
    identity = identity_of(load_certificate(cert))
    assert identity.rpps == RPPS
    assert "SN=DUPONT" in identity.subject or "2.5.4.4=DUPONT" in identity.subject


def test_bad_national_id_is_refused(instance: Path) -> None:
    with pytest.raises(CertificateError):
        _pki(instance).issue_professional("12345", "X", "Y")


def test_init_again_never_overwrites_keys(instance: Path) -> None:
    before = {
        p: p.read_bytes()
        for p in instance.rglob("*")
        if p.is_file() and p.suffix in (".key", ".keys", ".crt")
    }
    result = run_mss("init", "--data-dir", str(instance))
    assert result.returncode == 0, result.stderr
    assert "nothing changed" in result.stdout
    after = {p: p.read_bytes() for p in before}
    assert after == before


def test_cert_issue_and_revoke_commands(instance: Path) -> None:
    result = run_mss(
        "cert",
        "issue",
        "professional",
        "--rpps",
        RPPS,
        "--family",
        "DUPONT",
        "--data-dir",
        str(instance),
    )
    assert result.returncode == 0, result.stderr
    cert = Path(result.stdout.splitlines()[0].split(" ", 1)[1])
    assert identity_of(load_certificate(cert)).national_id == "8" + RPPS
    result = run_mss("cert", "revoke", str(cert), "--data-dir", str(instance))
    assert result.returncode == 0, result.stderr
    serial = load_certificate(cert).serial_number
    pems = (instance / "certs" / "crl.pem").read_bytes().split(b"-----END X509 CRL-----")
    crls = [x509.load_pem_x509_crl(p + b"-----END X509 CRL-----") for p in pems if b"BEGIN" in p]
    assert any(c.get_revoked_certificate_by_serial_number(serial) is not None for c in crls)
    result = run_mss("cert", "issue", "professional", "--rpps", "123", "--data-dir", str(instance))
    assert result.returncode == 1 and "11 digits" in result.stderr
