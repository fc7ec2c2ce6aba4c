"""Mail clients set themselves up (issue 15, "Clients and docs"): Thunderbird's autoconfig
file, read as Thunderbird reads it and every server it names tried with a real client;
the SRV and MX records `mss init` prints (RFC 6186, RFC 8314 §5.1)."""

from __future__ import annotations

import asyncio
import imaplib
import smtplib
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from mss.config import load_settings
from mss.core.clients import MailService, autoconfig_xml
from mss.errors import ConfigError
from mss.security.tokens import jwks_of

from .conftest import run_mss
from .harness import Running, running

DOMAIN = "pro.mssante.test"
WELL_KNOWN = "/.well-known/autoconfig/mail/config-v1.1.xml"
AUTOCONFIG_HOST = "/mail/config-v1.1.xml"
PORT_OF = {("imap", "SSL"): "imaps", ("imap", "STARTTLS"): "imap",
           ("smtp", "SSL"): "submissions", ("smtp", "STARTTLS"): "submission"}  # fmt: skip


async def _get(server: Running, path: str, **params: str) -> httpx.Response:
    async with httpx.AsyncClient(verify=server.client_tls()) as web:
        return await web.get(f"https://localhost:{server.ports['https']}{path}", params=params)


def _servers(document: bytes) -> list[dict[str, object]]:
    """What Thunderbird reads of each server (config-v1.1.xml's elements)."""
    root = ET.fromstring(document)
    assert root.tag == "clientConfig" and root.get("version") == "1.1"
    provider = root.find("emailProvider")
    assert provider is not None
    found = []
    for element in provider:
        if element.tag not in ("incomingServer", "outgoingServer"):
            continue
        found.append({
            "direction": element.tag, "type": element.get("type"),
            "hostname": element.findtext("hostname"), "port": int(element.findtext("port") or 0),
            "socketType": element.findtext("socketType"), "username": element.findtext("username"),
            "authentication": [a.text for a in element.findall("authentication")],
        })  # fmt: skip
    return found


def _try(server: Running, kind: str, socket_type: str, port: int) -> None:
    """Connect as the client would with this server entry, TLS verified; say hello."""
    tls = server.client_tls()
    if kind == "imap" and socket_type == "SSL":
        with imaplib.IMAP4_SSL("localhost", port, ssl_context=tls) as imap:
            assert "IMAP4REV1" in imap.capabilities
    elif kind == "imap":
        with imaplib.IMAP4("localhost", port) as imap:
            assert imap.starttls(ssl_context=tls)[0] == "OK"
    elif socket_type == "SSL":
        with smtplib.SMTP_SSL("localhost", port, context=tls) as smtp:
            assert smtp.ehlo()[0] == 250
    else:
        with smtplib.SMTP("localhost", port) as smtp:
            assert smtp.starttls(context=tls)[0] == 220


@pytest.mark.parametrize("path", [WELL_KNOWN, AUTOCONFIG_HOST])
async def test_thunderbird_autoconfig_names_the_servers_served(mss: Running, path: str) -> None:
    answer = await _get(mss, path, emailaddress=f"jean.dupont@{DOMAIN}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/xml")
    servers = _servers(answer.content)
    kinds = {(s["type"], s["socketType"]) for s in servers}
    assert kinds == set(PORT_OF)
    assert servers[0]["socketType"] == "SSL"  # implicit TLS proposed first (RFC 8314 §3)
    for entry in servers:
        assert entry["hostname"] == mss.settings.server.hostname
        assert entry["port"] == mss.ports[PORT_OF[(entry["type"], entry["socketType"])]]
        assert entry["username"] == "%EMAILADDRESS%"
        assert entry["authentication"] == ["password-cleartext"]  # no bearer tokens set
    for entry in servers:  # each entry works as Thunderbird would use it
        await asyncio.to_thread(
            _try, mss, str(entry["type"]), str(entry["socketType"]), int(str(entry["port"]))
        )


async def test_autoconfig_names_the_domains_hosted(mss: Running) -> None:
    root = ET.fromstring((await _get(mss, WELL_KNOWN)).content)
    assert root.find("emailProvider").get("id") == DOMAIN  # type: ignore[union-attr]
    assert [d.text for d in root.iter("domain")] == list(mss.settings.domains.professional)


async def test_autoconfig_of_a_domain_not_hosted_is_not_found(mss: Running) -> None:
    answer = await _get(mss, AUTOCONFIG_HOST, emailaddress="someone@elsewhere.test")
    assert answer.status_code == 404
    assert answer.json()["error"] == "NotFound"
    assert "(no mailbox of this domain here)" in answer.json()["detail"]


async def test_autoconfig_offers_oauth2_when_bearer_tokens_are_accepted(instance: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (instance / "jwks.json").write_text(jwks_of({"psc-1": key.public_key()}))
    overrides = {"oauth": {"issuer": "https://psc.test", "jwks_file": "jwks.json"}}
    async with running(instance, overrides=overrides) as server:
        servers = _servers((await _get(server, WELL_KNOWN)).content)
    assert all(s["authentication"] == ["password-cleartext", "OAuth2"] for s in servers)


async def test_behind_a_proxy_autoconfig_names_what_clients_reach(instance: Path) -> None:
    told = {"hostname": "imap.cabinet.test", "imaps": 993, "submission": 587}
    async with running(instance, overrides={"clients": told}) as server:
        servers = _servers((await _get(server, WELL_KNOWN)).content)
        ports = {(s["type"], s["socketType"]): s["port"] for s in servers}
        assert {s["hostname"] for s in servers} == {"imap.cabinet.test"}
        assert ports[("imap", "SSL")] == 993 and ports[("smtp", "STARTTLS")] == 587
        assert ports[("imap", "STARTTLS")] == server.ports["imap"]  # 0: the port served


def test_a_port_told_to_clients_is_checked() -> None:
    with pytest.raises(ConfigError, match=r"clients\.imaps: port 99999"):
        load_settings(overrides={"clients": {"imaps": 99999}}, env={})


def test_autoconfig_is_escaped_xml() -> None:
    service = MailService(hostname="a&b<c>", imap=1, imaps=2, submission=3, submissions=4)
    root = ET.fromstring(autoconfig_xml(service, ['d"&<'], 'd"&<'))
    assert root.find("emailProvider").get("id") == 'd"&<'  # type: ignore[union-attr]
    assert {h.text for h in root.iter("hostname")} == {"a&b<c>"}


def test_init_prints_the_srv_and_mx_records(tmp_path: Path) -> None:
    result = run_mss("init", "--data-dir", str(tmp_path / "d"), "--domain", "cabinet.test")
    assert result.returncode == 0, result.stderr
    lines = {line.strip() for line in result.stdout.splitlines()}
    host = "mail.cabinet.test."
    assert {
        f"_imaps._tcp.cabinet.test. IN SRV 0 1 2993 {host}",
        f"_imap._tcp.cabinet.test. IN SRV 10 1 2143 {host}",
        f"_submissions._tcp.cabinet.test. IN SRV 0 1 2465 {host}",
        f"_submission._tcp.cabinet.test. IN SRV 10 1 2587 {host}",
        f"cabinet.test. IN MX 10 {host}",
        f"patient.mssante.fr. IN MX 10 {host}",
    } <= lines
    assert not any(line.startswith("_imap._tcp.patient.") for line in lines)  # no IMAP login
    assert any("IN TXT" in line and "_domainkey.cabinet.test." in line for line in lines)
    again = run_mss("init", "--data-dir", str(tmp_path / "d"), env={"MSS_CLIENTS_IMAPS": "993"})
    assert f"_imaps._tcp.cabinet.test. IN SRV 0 1 993 {host}" in again.stdout
