"""Several `mss` processes on one database: IMAP sessions hear of the others' changes,
and `mss serve` runs workers that share the listening sockets.

Two in-process instances on the same data directory stand for two processes:
each has its own store (connections, writer) and its own session bus, as
separate processes have; what one commits reaches the other only through the
database (LISTEN/NOTIFY on PostgreSQL, commit polling on SQLite).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mss.testing.imapclient import RawIMAP

from .harness import PASSWORD, Running, message, running
from .test_serve import ALL_PORTS_FREE, stop_server, wait_ready

USER = "marie.martin@pro.mssante.test"
SENDER = "jean.dupont@pro.mssante.test"


async def _idling(server: Running) -> RawIMAP:
    client = await RawIMAP.connect(server.ports["imaps"], server.client_tls())
    await client.login(USER, PASSWORD)
    assert (await client.command("SELECT INBOX")).ok
    await client.send(b"i1 IDLE\r\n")
    assert (await client.read_line()).startswith(b"+")
    return client


async def _heard_within(client: RawIMAP, pattern: bytes, seconds: float) -> float:
    started = time.monotonic()
    while True:
        line = await asyncio.wait_for(client.read_line(), seconds)
        if re.search(pattern, line):
            return time.monotonic() - started


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_idle_session_hears_of_changes_made_by_another_process(
    instance: Path, request: pytest.FixtureRequest, database: str
) -> None:
    env = {}
    if database == "postgresql":
        env["MSS_STORAGE_URL"] = request.getfixturevalue("postgres_url")
    async with running(instance, env=env, workers=2) as one:
        await one.add_pro(USER)
        await one.add_pro(SENDER)
        async with running(instance, env=env, workers=2) as other:
            idler = await _idling(other)
            # a message delivered by SMTP through the first process
            await one.submit(SENDER, message(SENDER, USER), [USER])
            # nothing polls in IDLE: only the feed brings it (3 s: a loaded machine)
            assert await _heard_within(idler, rb"^\* 1 EXISTS", 3.0) < 3.0
            # a flag stored through the first process's IMAP
            writer = await RawIMAP.connect(one.ports["imaps"], one.client_tls())
            await writer.login(USER, PASSWORD)
            await writer.command("SELECT INBOX")
            assert (await writer.command("STORE 1 +FLAGS (\\Flagged)")).ok
            await _heard_within(idler, rb"^\* 1 FETCH .*\\Flagged", 3.0)
            # and an expunge
            await writer.command("STORE 1 +FLAGS (\\Deleted)")
            assert (await writer.command("EXPUNGE")).ok
            await _heard_within(idler, rb"^\* 1 EXPUNGE", 3.0)
            await writer.close()
            await idler.send(b"DONE\r\n")
            assert (await idler.until("i1")).ok
            await idler.close()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_a_change_committed_in_another_process_is_told_at_the_next_command(
    instance: Path, request: pytest.FixtureRequest, database: str
) -> None:
    """Issue 13: what another worker committed before a command is told at its end (an
    APPEND, a flag, an expunge), not at the change feed's next look."""
    env = {}
    if database == "postgresql":
        env["MSS_STORAGE_URL"] = request.getfixturevalue("postgres_url")
    async with running(instance, env=env, workers=2) as one:
        await one.add_pro(USER)
        async with running(instance, env=env, workers=2) as other:
            writer = await RawIMAP.connect(one.ports["imaps"], one.client_tls())
            reader = await RawIMAP.connect(other.ports["imaps"], other.client_tls())
            for client in (writer, reader):
                await client.login(USER, PASSWORD)
                assert (await client.command("SELECT INBOX")).ok
            for n in range(1, 11):
                raw = message(SENDER, USER, message_id=f"<m{n}@pro.mssante.test>")
                appended = await writer.command(b"APPEND INBOX {%d+}\r\n" % len(raw) + raw)
                assert appended.ok
                assert b"* %d EXISTS\r\n" % n in (await reader.command("NOOP")).lines
                assert (await writer.command(f"STORE {n} +FLAGS (\\Flagged)")).ok
                told = (await reader.command("CHECK")).lines
                assert any(re.match(rb"\* %d FETCH .*\\Flagged" % n, line) for line in told)
            assert (await writer.command("STORE 1:* +FLAGS (\\Deleted)")).ok
            assert (await writer.command("EXPUNGE")).ok
            told = (await reader.command("NOOP")).lines
            assert sorted(told) == sorted(b"* %d EXPUNGE\r\n" % n for n in range(1, 11))
            await writer.close()
            await reader.close()


def _serve_with_workers(
    instance: Path, workers: int = 2, loop: str | None = None, **ports: int
) -> subprocess.Popen[str]:
    fixed = {f"MSS_LISTEN_{name.upper()}": str(port) for name, port in ports.items()}
    if loop is not None:
        fixed["MSS_SERVER_EVENT_LOOP"] = loop
    env = {**os.environ, **ALL_PORTS_FREE, "MSS_SERVER_WORKERS": str(workers), **fixed}
    return subprocess.Popen(
        [sys.executable, "-m", "mss", "serve", "--data-dir", str(instance)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip


def _workers_of(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children]


def _log_lines(server: subprocess.Popen[str], needle: str, count: int) -> list[str]:
    """The server's log lines holding `needle`, once there are `count` of them (30 s at most)."""
    log: list[str] = server.log  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    while sum(needle in line for line in log) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return [line for line in log if needle in line]


@pytest.mark.slow
def test_serve_workers_share_the_ports_and_come_back_when_killed(instance: Path) -> None:
    server = _serve_with_workers(instance)
    try:
        ports = wait_ready(server)
        log: list[str] = server.log  # type: ignore[attr-defined]
        _log_lines(server, "ready", 2)
        workers = _workers_of(server.pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        _log_lines(server, "ready", 3)
        assert any("worker 1 exited (killed by signal 9)" in line for line in log), log
        assert len(_workers_of(server.pid)) == 2
        # every new connection is served (by either worker)
        for _ in range(6):
            with socket.create_connection(("localhost", ports["imap"]), timeout=10) as sock:
                assert sock.recv(200).startswith(b"* OK")
        assert stop_server(server, signal.SIGTERM) == 0
    finally:
        server.kill()
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers[1:])


@pytest.mark.slow
def test_workers_die_with_a_killed_supervisor(instance: Path) -> None:
    server = _serve_with_workers(instance)
    try:
        wait_ready(server)
        workers = _workers_of(server.pid)
        assert len(workers) == 2
    finally:
        stop_server(server, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


def _established(pid: int, port: int) -> int:
    """The TCP connections on local `port` that process `pid` holds open."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    count = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            established = fields[3] == "01"
            count += local_port == port and established and fields[9] in inodes
    return count


@pytest.mark.slow
def test_serve_workers_each_take_a_share_of_a_wave_of_connections(instance: Path) -> None:
    """Forty clients connecting at once are spread over both workers (one listening
    socket each, SO_REUSEPORT), not all accepted by the first worker awake."""
    server = _serve_with_workers(instance)
    clients: list[socket.socket] = []
    try:
        port = wait_ready(server)["imap"]
        clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(40)]
        for client in clients:
            assert client.recv(200).startswith(b"* OK")
        shares = sorted(_established(pid, port) for pid in _workers_of(server.pid))
        assert sum(shares) == 40, shares
        assert shares[0] >= 5, shares  # even odds per connection: fewer than 5 is 1 in 10^7
    finally:
        for client in clients:
            client.close()
        stop_server(server, signal.SIGTERM)


@pytest.mark.slow
def test_a_second_server_on_the_same_ports_is_refused(instance: Path) -> None:
    """The workers' sockets share their port among themselves only: another `mss serve`
    on the same port fails with a clear error instead of taking part of the clients."""
    first = _serve_with_workers(instance)
    try:
        port = wait_ready(first)["imap"]
        second = _serve_with_workers(instance, imap=port)
        try:
            _, error = second.communicate(timeout=60)
        finally:
            second.kill()
        code = second.returncode
        assert code != 0
        assert "cannot listen on" in error and f":{port}" in error, error
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            assert client.recv(200).startswith(b"* OK")  # the first one still serves
    finally:
        stop_server(first, signal.SIGTERM)


@pytest.mark.slow
@pytest.mark.parametrize(("setting", "expected"), [(None, "uvloop"), ("asyncio", "asyncio")])
def test_serve_workers_run_on_the_event_loop_the_settings_name(
    instance: Path, setting: str | None, expected: str
) -> None:
    """uvloop by default; `server.event_loop = "asyncio"` gives the standard library's.
    Each worker says which loop it runs, and serves on it (TLS and plain doors)."""
    server = _serve_with_workers(instance, loop=setting)
    try:
        ports = wait_ready(server)
        ready = _log_lines(server, " ready on ", 2)
        loops = sorted(line.rsplit(" ", 1)[1].strip() for line in ready)
        assert loops == [expected, expected], server.log  # type: ignore[attr-defined]
        for _ in range(4):  # plain IMAP, then TLS from the first byte on the IMAPS door
            with socket.create_connection(("127.0.0.1", ports["imap"]), timeout=10) as plain:
                assert plain.recv(200).startswith(b"* OK")
            tls = ssl.create_default_context(cafile=str(instance / "certs" / "ca.crt"))
            raw = socket.create_connection(("127.0.0.1", ports["imaps"]), timeout=10)
            with tls.wrap_socket(raw, server_hostname="localhost") as secure:
                assert secure.recv(200).startswith(b"* OK")
        assert stop_server(server, signal.SIGTERM) == 0
    finally:
        server.kill()
