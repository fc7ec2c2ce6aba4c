"""Issue 15, several nodes: mss reads the PROXY protocol (v1 and v2, HAProxy's
`send-proxy` and `send-proxy-v2`) on every door. From a configured proxy
(`[server] proxy_from`) the header is required and its client address becomes the peer
everywhere (login throttle, `Received:`, logs); from anyone else a PROXY header is
refused. Headers are read exactly (what follows is not lost), with a size cap and a
timeout.

Real clients (smtplib, imaplib, httpx) through a relay that adds the header
(`tests/proxying.py`), and raw sockets for what a client must not be able to do.
"""

from __future__ import annotations

import asyncio
import imaplib
import logging
import smtplib
import socket
import ssl
from collections.abc import AsyncIterator
from ipaddress import ip_address
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mss.config import load_settings
from mss.errors import ConfigError
from mss.security.pki import DevPKI
from mss.security.proxy_protocol import (
    ProxyHeaderError,
    ProxyPolicy,
    client_address,
    header_length,
    open_door,
)
from mss.security.tls import server_context
from mss.store import login_throttle as throttle

from .harness import PASSWORD, Running, message, running
from .proxying import header, relay
from .test_dmp_api import patient
from .test_login_throttle import THROTTLED, WRONG, smtp_auth

JEAN = "jean.dupont@pro.mssante.test"
CLIENT, OTHER_CLIENT = "203.0.113.7", "198.51.100.23"
PROXY, STRANGER = "127.0.0.1", "127.0.0.9"  # the configured proxy; an address that is not one
LIMITS = throttle.LoginLimits()


@pytest.fixture
async def behind_proxy(instance: Path) -> AsyncIterator[Running]:
    async with running(instance, overrides={"server": {"proxy_from": [f"{PROXY}/32"]}}) as mss:
        await mss.add_pro(JEAN)
        yield mss


# --- the header, bytes in, address out ------------------------------------------------------

addresses = st.one_of(
    st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str)
)  # fmt: skip


@given(client=addresses, port=st.integers(1, 65535), version=st.sampled_from([1, 2]),
       rest=st.binary(max_size=64))  # fmt: skip
def test_a_proxy_header_is_read_exactly_whatever_follows(
    client: str, port: int, version: int, rest: bytes
) -> None:
    raw = header(client, version=version, client_port=port)
    assert header_length(raw + rest) == len(raw)
    assert client_address(raw) == (str(ip_address(client)), port)
    for cut in range(len(raw)):  # a truncated header is waited for, never taken as whole
        length = header_length(raw[:cut])
        assert length is None or length == len(raw) > cut


@pytest.mark.parametrize(
    "raw",
    [
        b"EHLO client.example\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello
        b"PROXY TCP4 " + b"1" * 120,  # a v1 line past 107 bytes
        b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff",  # v2 announcing 65535 bytes
    ],
)
def test_garbage_and_oversized_headers_are_refused(raw: bytes) -> None:
    with pytest.raises(ProxyHeaderError):
        header_length(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"PROXY TCP4 999.0.0.1 127.0.0.1 1 2\r\n",
        b"PROXY TCP4 1.2.3.4\r\n",
        b"PROXY HTTP 1.2.3.4 5.6.7.8 1 2\r\n",
        b"\r\n\r\n\x00\r\nQUIT\n\x13\x11\x00\x0c" + bytes(12),  # version 1 in a v2 header
        b"\r\n\r\n\x00\r\nQUIT\n\x2f\x11\x00\x0c" + bytes(12),  # unknown command
    ],
)
def test_malformed_headers_are_refused(raw: bytes) -> None:
    with pytest.raises(ProxyHeaderError):
        client_address(raw)


def test_a_health_check_of_the_proxy_keeps_the_proxy_address() -> None:
    """v2 LOCAL (HAProxy's own checks) and v1 UNKNOWN name no client (spec §2.1, §2.2)."""
    assert client_address(b"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00") is None
    assert client_address(b"PROXY UNKNOWN\r\n") is None


def test_only_listed_networks_are_proxies() -> None:
    policy = ProxyPolicy.parse(["10.0.0.0/8", "2001:db8::/32"])
    assert policy.trusts("10.1.2.3") and policy.trusts("2001:db8::5")
    assert policy.trusts("::ffff:10.1.2.3")  # a dual-stack socket's IPv4 peer
    assert not policy.trusts("11.0.0.1") and not policy.trusts(None)
    assert not ProxyPolicy().trusts("127.0.0.1")


# --- every door ----------------------------------------------------------------------------


def _headers_of(raw: bytes) -> str:
    return raw.split(b"\r\n\r\n", 1)[0].decode()


async def test_the_client_named_by_the_proxy_is_the_peer_on_every_door(
    behind_proxy: Running, caplog: pytest.LogCaptureFixture
) -> None:
    """Through the proxy, each door sees the client of the header: SMTP's `Received:`,
    the failed-login lines of SMTP, IMAP (STARTTLS and implicit TLS) and HTTPS."""
    mss = behind_proxy
    caplog.set_level(logging.INFO)
    ports, ca = mss.ports, mss.ca
    tls = mss.client_tls()
    async with relay(ports["submissions"], CLIENT) as port:  # implicit TLS behind the header
        await asyncio.to_thread(_submit_over_tls, port, tls)
    [raw] = await mss.inbox(JEAN)
    assert f"([{CLIENT}])" in _headers_of(raw)
    async with relay(ports["submission"], CLIENT, version=1) as port:
        assert await asyncio.to_thread(smtp_auth, port, ca, JEAN, "faux") == WRONG
    async with relay(ports["mx"], OTHER_CLIENT) as port:
        assert await asyncio.to_thread(_ehlo, port) == 250
    for door in ("imap", "imaps"):
        async with relay(ports[door], CLIENT) as port:
            await asyncio.to_thread(_imap_failed_login, port, tls, door == "imaps")
    async with relay(ports["https"], OTHER_CLIENT) as port, httpx.AsyncClient(verify=tls) as web:
        url = f"https://localhost:{port}/api/dmp/me/documents"
        assert (await web.get(url, auth=patient("faux"))).status_code == 401
    lines = [r.getMessage() for r in caplog.records]
    assert (
        f"login refused: door=submission account='{JEAN}' ip={CLIENT} reason=wrong password"
        in lines
    )
    assert f"login refused: door=imap account='{JEAN}' ip={CLIENT} reason=wrong password" in lines
    assert any("door=dmp-api" in line and f"ip={OTHER_CLIENT}" in line for line in lines)
    assert any(line.startswith(f"IMAP connection from {CLIENT} ") for line in lines)
    assert not any(f"ip={PROXY}" in line for line in lines if "login refused" in line)


def _submit_over_tls(port: int, tls: ssl.SSLContext) -> None:
    with smtplib.SMTP_SSL("localhost", port, context=tls, timeout=30) as client:
        client.login(JEAN, PASSWORD)
        client.sendmail(JEAN, [JEAN], message(JEAN, JEAN, "par le proxy"))


def _ehlo(port: int) -> int:
    with smtplib.SMTP("localhost", port, timeout=30) as client:
        return int(client.ehlo()[0])


def _imap_failed_login(port: int, tls: ssl.SSLContext, implicit: bool) -> None:
    if implicit:
        client: imaplib.IMAP4 = imaplib.IMAP4_SSL("localhost", port, ssl_context=tls, timeout=30)
    else:
        client = imaplib.IMAP4("localhost", port, timeout=30)
        client.starttls(tls)
    with pytest.raises(imaplib.IMAP4.error):
        client.login(JEAN, "faux")
    client.logout()


async def test_login_throttle_counts_the_client_behind_the_proxy(behind_proxy: Running) -> None:
    """Failures of one client behind the proxy slow that client, not the proxy's others."""
    mss = behind_proxy
    port, ca = mss.ports["submission"], mss.ca
    async with relay(port, CLIENT) as one, relay(port, OTHER_CLIENT) as other:
        answers = [
            await asyncio.to_thread(smtp_auth, one, ca, f"inconnu{n}@pro.mssante.test", "x")
            for n in range(LIMITS.per_ip + 1)
        ]
        assert answers[-1] == THROTTLED and answers[0] == WRONG
        assert await asyncio.to_thread(smtp_auth, other, ca, JEAN, "faux") == WRONG


# --- what a client may not do --------------------------------------------------------------


def _raw(port: int, source: str, data: bytes, *, read_first: bool = False) -> bytes:
    """Connect from `source`, send `data` (after the greeting when `read_first`), and read
    until the server closes: what it said."""
    with socket.create_connection(("127.0.0.1", port), timeout=15, source_address=(source, 0)) as s:
        said = s.recv(4096) if read_first else b""
        s.sendall(data)
        if data:
            s.shutdown(socket.SHUT_WR)
        try:
            while chunk := s.recv(4096):
                said += chunk
        except ConnectionResetError:
            pass
    return said


@pytest.mark.parametrize("door", ["mx", "submission", "submissions", "imap", "imaps", "https"])
async def test_a_proxy_header_from_an_address_not_configured_is_refused(
    behind_proxy: Running, door: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mss.security.proxy_protocol")
    server_first = door in ("mx", "submission", "imap")
    port = behind_proxy.ports[door]
    raw = header(CLIENT) + b"EHLO x\r\n"
    said = await asyncio.to_thread(_raw, port, STRANGER, raw, read_first=server_first)
    assert b"250" not in said and b"OK" not in said.split(b"\r\n", 1)[-1]
    assert f"connection from {STRANGER} closed: PROXY header from an address not configured" in (
        caplog.text
    )


async def test_a_proxy_header_is_refused_where_no_proxy_is_configured(mss: Running) -> None:
    said = await asyncio.to_thread(
        _raw, mss.ports["mx"], PROXY, header(CLIENT, version=1) + b"EHLO x\r\n", read_first=True
    )
    assert said.startswith(b"220 ") and b"250" not in said


@pytest.mark.parametrize(
    "sent",
    [b"EHLO client.example\r\n", header(CLIENT)[:10], b"PROXY TCP4 1.2.3.4 garbage\r\nEHLO x\r\n"],
    ids=["no header", "truncated", "garbage"],
)
async def test_a_proxy_must_start_with_a_good_header(behind_proxy: Running, sent: bytes) -> None:
    """From the proxy, anything but a whole good header: closed without a greeting."""
    said = await asyncio.to_thread(_raw, behind_proxy.ports["submission"], PROXY, sent)
    assert said == b""


async def test_a_silent_proxy_connection_is_closed_after_the_header_timeout(
    behind_proxy: Running,
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await asyncio.to_thread(_raw, behind_proxy.ports["imaps"], PROXY, b"") == b""
    assert loop.time() - started < 10


async def test_a_header_sent_by_the_client_behind_the_proxy_is_not_read(
    behind_proxy: Running, caplog: pytest.LogCaptureFixture
) -> None:
    """Only the proxy's header counts: a client's own `PROXY` line after it is a command
    like any other (refused), and the address stays the one the proxy named."""
    caplog.set_level(logging.INFO)
    async with relay(behind_proxy.ports["submission"], CLIENT) as port:
        assert await asyncio.to_thread(_own_header, port) // 100 == 5  # refused
        assert await asyncio.to_thread(smtp_auth, port, behind_proxy.ca, JEAN, "faux") == WRONG
    assert any(f"ip={CLIENT}" in r.getMessage() for r in caplog.records)
    assert not any(f"ip={OTHER_CLIENT}" in r.getMessage() for r in caplog.records)
    assert not any(f"('{OTHER_CLIENT}'," in r.getMessage() for r in caplog.records)


def _own_header(port: int) -> int:
    with smtplib.SMTP("localhost", port, timeout=30) as client:
        return int(client.docmd("PROXY", f"TCP4 {OTHER_CLIENT} 127.0.0.1 1 2")[0])


@pytest.mark.parametrize("cidr", ["10.0.0.5/24", "proxy.example", "10.0.0.0/33"])
def test_a_proxy_address_that_is_not_one_stops_the_start(instance: Path, cidr: str) -> None:
    with pytest.raises(ConfigError, match="proxy_from"):
        load_settings(instance / "mss.toml", env={}, overrides={"server": {"proxy_from": [cidr]}})


@pytest.mark.parametrize("proxied", [False, True])
async def test_a_door_without_a_tls_context_closes_the_connection_and_keeps_serving(
    proxied: bool, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The gate asks for the TLS context of each connection (a reload reaches the next
    one). Should it fail, that connection is closed before the door's protocol exists (no
    session left waiting for a handshake that never comes), and the next one is served."""
    pki = DevPKI(tmp_path)
    pki.ensure("localhost", ["pro.mssante.test"])
    made: list[asyncio.Protocol] = []
    contexts: list[Exception | None] = [RuntimeError("no certificate"), None]

    def context() -> ssl.SSLContext:
        error = contexts.pop(0)
        if error is not None:
            raise error
        return server_context(pki.path("server", ".crt"), pki.path("server", ".key"))

    def door() -> asyncio.Protocol:
        made.append(asyncio.Protocol())
        return made[-1]

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        if proxied:
            writer.write(header("192.0.2.7"))
            await writer.drain()
        return reader, writer

    policy = ProxyPolicy.parse(["127.0.0.1/32"] if proxied else [])
    server = await open_door(door, context, policy, shared=None, host="127.0.0.1", port=0)
    port = server.sockets[0].getsockname()[1]
    try:
        with caplog.at_level(logging.ERROR, "mss.security.proxy_protocol"):
            reader, writer = await connect()
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
            writer.close()
        assert made == []
        assert "no TLS context" in caplog.text
        reader, writer = await connect()
        await writer.start_tls(ssl.create_default_context(cafile=pki.ca_bundle))
        assert len(made) == 1  # the door's protocol, behind a finished handshake
        writer.close()
    finally:
        server.close()
