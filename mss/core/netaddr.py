"""Whether an IP address is on the Internet: what the server may reach for a URL a
user gave (a Web Push endpoint), checked when it is given and again at each
connection (DNS may answer otherwise the second time), so that nobody makes the
server reach inside its own network (SSRF)."""

from __future__ import annotations

import ipaddress


def public(address: str) -> bool:
    """An address on the Internet: not loopback, private, link-local, reserved,
    multicast, shared (CGNAT) nor unspecified — IPv4 inside IPv6 checked as IPv4."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def is_address(host: str) -> bool:
    """Whether `host` is an IP address itself (no name to resolve)."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True
