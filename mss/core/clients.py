"""What mail clients need to find this server by themselves: the Thunderbird autoconfig
file (`config-v1.1.xml`, https://wiki.mozilla.org/Thunderbird:Autoconfiguration:
ConfigFileFormat) and the DNS records to publish (MX; SRV of RFC 6186 and RFC 8314 §5.1).

Pure: the served ports and host name come in; XML text and zone-file lines go out.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

# Thunderbird replaces it with the address the user typed; MSSanté logins are addresses.
EMAIL_PLACEHOLDER = "%EMAILADDRESS%"
# over TLS only: every server below is SSL or STARTTLS
PASSWORD = "password-cleartext"  # noqa: S105 (a method's name, not a password)
OAUTH2 = "OAuth2"


@dataclass(frozen=True, kw_only=True)
class MailService:
    """The host name and ports mail clients connect to."""

    hostname: str
    imap: int  # STARTTLS (RFC 3501 §6.2.1)
    imaps: int  # implicit TLS (RFC 8314 §3.3)
    submission: int  # STARTTLS (RFC 6409)
    submissions: int  # implicit TLS (RFC 8314 §3.3)
    oauth: bool = False  # bearer tokens accepted (XOAUTH2 / OAUTHBEARER)

    def servers(self) -> list[tuple[str, str, int, str]]:
        """(direction, type, port, socketType): implicit TLS first, as RFC 8314 §3
        prefers it, so that Thunderbird proposes it."""
        return [
            ("incomingServer", "imap", self.imaps, "SSL"),
            ("incomingServer", "imap", self.imap, "STARTTLS"),
            ("outgoingServer", "smtp", self.submissions, "SSL"),
            ("outgoingServer", "smtp", self.submission, "STARTTLS"),
        ]


def autoconfig_xml(service: MailService, domains: Sequence[str], provider: str) -> bytes:
    """The `clientConfig` document for the mailboxes of `domains` (escaped by ElementTree)."""
    root = ET.Element("clientConfig", version="1.1")
    emailer = ET.SubElement(root, "emailProvider", id=provider)
    for domain in domains:
        ET.SubElement(emailer, "domain").text = domain
    ET.SubElement(emailer, "displayName").text = f"MSSanté ({provider})"
    ET.SubElement(emailer, "displayShortName").text = "MSSanté"
    for direction, kind, port, socket_type in service.servers():
        server = ET.SubElement(emailer, direction, type=kind)
        ET.SubElement(server, "hostname").text = service.hostname
        ET.SubElement(server, "port").text = str(port)
        ET.SubElement(server, "socketType").text = socket_type
        ET.SubElement(server, "authentication").text = PASSWORD
        if service.oauth:
            ET.SubElement(server, "authentication").text = OAUTH2
        ET.SubElement(server, "username").text = EMAIL_PLACEHOLDER
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


# RFC 6186 §3.2 (_imap, _imaps, _submission) and RFC 8314 §5.1 (_submissions)
SRV_SERVICES = ("_imaps", "_imap", "_submissions", "_submission")


def srv_lines(service: MailService, domain: str) -> list[str]:
    """The SRV records of `domain` for its mail clients: implicit TLS preferred (priority
    0), STARTTLS next (RFC 8314 §5.1)."""
    ports = {
        "_imaps": (0, service.imaps), "_imap": (10, service.imap),
        "_submissions": (0, service.submissions), "_submission": (10, service.submission),
    }  # fmt: skip
    return [
        f"{name}._tcp.{domain}. IN SRV {ports[name][0]} 1 {ports[name][1]} {service.hostname}."
        for name in SRV_SERVICES
    ]


def mx_line(domain: str, hostname: str) -> str:
    """The MX record of a domain whose mail this server receives (RFC 5321 §5.1)."""
    return f"{domain}. IN MX 10 {hostname}."
