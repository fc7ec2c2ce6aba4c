"""`mss bench imap`: IMAP timings on a big mailbox, command rates, 10,000 IDLE sessions.

A throw-away instance runs as its own `mss serve` process. The bench fills a
mailbox with N messages (100,000 by default) through the store's group commit,
then measures over TLS: SELECT, `UID FETCH 1:* (FLAGS)`, FETCH BODY[] messages
per second, SEARCH on a header and on the body, APPEND per second; the
per-command rates of the concurrent stress tool (10 clients, model-checked);
and the server's peak RSS while it holds C authenticated sessions in IDLE,
with the time for all of them to hear of a new message.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.imapstress import Options, stress
from bench.smtp import (
    PeakMemory,
    _proc_cpu,
    _proc_memory_mb,
    _proc_peak_rss_mb,
    _proc_pss_mb,
    _start_server,
    make_message,
    print_results,
)
from mss.testing.imapclient import RawIMAP

USER = "bench@pro.mssante.test"
IDLER = "idle@pro.mssante.test"
PASSWORD = "mot-de-passe-du-banc"  # noqa: S105 - a throw-away instance


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--messages", type=int, default=100_000, help="mailbox size (100000)")
    parser.add_argument("--idle", type=int, default=10_000, help="IDLE connections (10000)")
    parser.add_argument(
        "--idle-workers", type=int, default=0,
        help="workers of the server holding the IDLE sessions (0: mss's default; 50,000 "
        "need 4 where a process may open 20,000 files)",
    )  # fmt: skip
    parser.add_argument("--stress-seconds", type=float, default=20.0)
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")


def _fill(data: Path, messages: int) -> None:
    """Deliver `messages` messages of ~2 KB to the bench account, 64 at a time."""
    from mss.config import load_settings
    from mss.store.accounts import get_account
    from mss.store.api import Store
    from mss.store.mailboxes import INBOX, Target, mailbox_id

    settings = load_settings(data / "mss.toml")
    store = Store.open(settings.storage_url, settings.path(settings.storage.key_file))
    box = store.db.read_sync(
        lambda c: mailbox_id(c, get_account(c, USER).id, INBOX)  # type: ignore[union-attr]
    )
    store.start()

    async def go() -> None:
        sem = asyncio.Semaphore(64)

        async def one(i: int) -> None:
            async with sem:
                body = make_message(i, 2048, "jean.dupont@pro.mssante.test", USER)
                if i % 1000 == 0:
                    body = body.replace(b"Subject: Compte rendu", b"Subject: Rare aiguille")
                if i % 997 == 0:
                    body += b"mot-cle-rare-du-corps\r\n"
                await store.deliver(body, [Target(box, flags=1 if i % 3 else 0)])

        try:
            await asyncio.gather(*(one(i) for i in range(messages)))
        finally:
            await store.close()

    asyncio.run(go())


async def _timed(client: RawIMAP, command: str) -> tuple[float, Any]:
    started = time.perf_counter()
    reply = await client.command(command)
    if not reply.ok:
        raise SystemExit(f"{command}: {reply.tagged!r}")
    return time.perf_counter() - started, reply


async def _timed_bulk(client: RawIMAP, command: str) -> tuple[float, int]:
    """Time a command with a big answer, read in bulk (not line by line: the client
    would be slower than the server); return the time and the number of lines."""
    tag = client.tag()
    started = time.perf_counter()
    await client.send(f"{tag} {command}\r\n".encode())
    data = await client.reader.readuntil(f"\r\n{tag} OK".encode())
    await client.reader.readuntil(b"\r\n")
    return time.perf_counter() - started, data.count(b"\r\n* ")


async def _big_mailbox(port: int, tls: ssl.SSLContext, messages: int) -> dict[str, Any]:
    client = await RawIMAP.connect(port, tls)
    await client.login(USER, PASSWORD)
    selects = [(await _timed(client, "SELECT INBOX"))[0] for _ in range(5)]
    flags_time, fetched = await _timed_bulk(client, "UID FETCH 1:* (FLAGS)")
    sample = 2000
    started = time.perf_counter()
    for start in range(1, sample, 100):
        await client.command(f"FETCH {start}:{start + 99} BODY.PEEK[]")
    body_rate = sample / (time.perf_counter() - started)
    header_time, header = await _timed(client, 'SEARCH SUBJECT "aiguille"')
    body_time, body = await _timed(client, 'SEARCH BODY "mot-cle-rare-du-corps"')
    await client.close()
    return {
        "messages": messages,
        "select_ms": round(statistics.median(selects) * 1000, 1),
        "fetch_flags_all_s": round(flags_time, 3),
        "fetch_flags_lines": fetched + 1,
        "fetch_body_per_s": round(body_rate, 1),
        "search_header_ms": round(header_time * 1000, 1),
        "search_header_hits": len(header.lines[0].split()) - 2 if header.lines else 0,
        "search_body_s": round(body_time, 3),
        "search_body_hits": len(body.lines[0].split()) - 2 if body.lines else 0,
    }


async def _appends(port: int, tls: ssl.SSLContext, total: int = 2000, clients: int = 10) -> float:
    async def one(n: int) -> None:
        client = await RawIMAP.connect(port, tls)
        await client.login(USER, PASSWORD)
        for i in range(total // clients):
            data = make_message(n * 100000 + i, 2048, USER, USER).decode()
            reply = await client.command(f"APPEND Archive {{{len(data)}+}}\r\n{data}")
            assert reply.ok, reply.tagged
        await client.close()

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(clients)))
    return total / (time.perf_counter() - started)


# Client connections one process holds: this container allows 20,000 open files per
# process, so 50,000 sessions are opened by four client processes (and served by
# `--idle-workers 4`: each server process holds about a quarter of them).
IDLE_PER_PROCESS = 12_500


async def _open_idle(
    port: int, tls: ssl.SSLContext, count: int, source: str | None = None
) -> list[RawIMAP]:
    """`count` authenticated sessions, each in IDLE on the INBOX (from `source`)."""
    clients: list[RawIMAP] = []
    sem = asyncio.Semaphore(200)

    async def open_one() -> None:
        async with sem:
            client = await RawIMAP.connect(port, tls, source=source)
            await client.login(IDLER, PASSWORD)
            await client.command("SELECT INBOX")
            await client.send(b"i IDLE\r\n")
            await client.read_line()
            clients.append(client)

    await asyncio.gather(*(open_one() for _ in range(count)))
    return clients


async def _hold_idle(port: int, cafile: str, count: int, source: str) -> None:
    """A client process: open `count` sessions, say `ready`; at the line `go` on stdin
    wait for each session's untagged answer (the new message), say `woken <time>`;
    leave when stdin closes."""
    tls = ssl.create_default_context(cafile=cafile)
    clients = await _open_idle(port, tls, count, source)
    loop = asyncio.get_running_loop()
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    await asyncio.gather(*(c.read_line() for c in clients))
    print(f"woken {time.time()}", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)


async def _idle_clients(port: int, cafile: str, count: int) -> list[asyncio.subprocess.Process]:
    """Client processes holding `count` sessions between them, once all are open."""
    shares = [IDLE_PER_PROCESS] * (count // IDLE_PER_PROCESS)
    if count % IDLE_PER_PROCESS:
        shares.append(count % IDLE_PER_PROCESS)
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.imap", str(port), cafile, str(share),
            f"127.0.0.{2 + n}",  # ephemeral ports are counted per source address
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        for n, share in enumerate(shares)
    ]  # fmt: skip
    for process in processes:
        assert process.stdout is not None
        line = await process.stdout.readline()
        if line.strip() != b"ready":
            raise SystemExit(f"an IDLE client process failed: {line!r}")
    return processes


async def _idle(port: int, cafile: str, count: int, server_pid: int) -> dict[str, Any]:
    """Open `count` authenticated IDLE sessions, then deliver one message to them all."""
    tls = ssl.create_default_context(cafile=cafile)
    rss_before = _rss_mb(server_pid)
    pss_before = _proc_pss_mb(server_pid)
    sampler = PeakMemory(server_pid).__enter__()
    started = time.perf_counter()
    many = count > IDLE_PER_PROCESS
    processes = await _idle_clients(port, cafile, count) if many else []
    clients = [] if many else await _open_idle(port, tls, count)
    opened = time.perf_counter() - started
    rss_now = _rss_mb(server_pid)
    pss_now = _proc_pss_mb(server_pid)
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(b"go\n")
        await process.stdin.drain()
    sender = await RawIMAP.connect(port, tls)
    await sender.login(IDLER, PASSWORD)
    started, wall = time.perf_counter(), time.time()
    await sender.command("APPEND INBOX {12+}\r\nSubject: x\r\n")
    await asyncio.gather(*(c.read_line() for c in clients))
    fan_out = time.perf_counter() - started
    for process in processes:  # each says when its last session heard of the message
        assert process.stdout is not None and process.stdin is not None
        woken = (await process.stdout.readline()).split()
        fan_out = max(fan_out, float(woken[1]) - wall)
        process.stdin.close()
        await process.wait()
    sampler.__exit__()
    for client in clients:
        client.writer.close()
    await sender.close()
    return {
        "idle_connections": count,
        "idle_client_processes": max(1, len(processes)),
        "idle_open_s": round(opened, 1),
        "idle_server_rss_before_mb": round(rss_before, 1),
        "idle_server_rss_mb": round(rss_now, 1),
        "idle_per_connection_kb": round((rss_now - rss_before) * 1024 / count, 1),
        "idle_server_peak_rss_mb": round(_proc_peak_rss_mb(server_pid), 1),
        "idle_server_pss_before_mb": round(pss_before, 1),
        "idle_server_pss_mb": round(pss_now, 1),
        "idle_server_peak_pss_mb": round(sampler.peak_mb, 1),
        "idle_wake_all_s": round(fan_out, 2),
    }


def _rss_mb(pid: int) -> float:
    return _proc_memory_mb(pid, "VmRSS")


def _mss(data: Path, *args: str, stdin: str | None = None) -> None:
    subprocess.run(  # noqa: S603
        [sys.executable, "-m", "mss", *args, "--data-dir", str(data)],
        input=stdin, capture_output=True, text=True, check=True,
    )  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory(prefix="mss-bench-imap-") as tmp:
        data = Path(tmp) / "data"
        subprocess.run([sys.executable, "-m", "mss", "init", "--data-dir", str(data)],  # noqa: S603
                       capture_output=True, check=True)  # fmt: skip
        for user in (USER, IDLER):
            _mss(data, "pro", "add", user, "--password-stdin", stdin=PASSWORD + "\n")
        started = time.perf_counter()
        _fill(data, args.messages)
        fill_seconds = time.perf_counter() - started
        server, ports = _start_server(data, {})
        try:
            tls = ssl.create_default_context(cafile=str(data / "certs" / "ca.crt"))
            port = ports["imaps"]
            cpu0 = _proc_cpu(server.pid)
            results: dict[str, Any] = {"fill_per_s": round(args.messages / fill_seconds, 1)}
            results.update(asyncio.run(_big_mailbox(port, tls, args.messages)))
            results["append_per_s"] = round(asyncio.run(_appends(port, tls)), 1)
            options = Options(port=port, tls=tls, user=IDLER, password=PASSWORD, clients=10,
                              seconds=args.stress_seconds)  # fmt: skip
            outcome = asyncio.run(stress(options))
            results["stress_rates"] = outcome.rates()
            results["stress_errors"] = len(outcome.errors)
            for error in outcome.errors[:10]:
                print(f"stress error: {error}", file=sys.stderr)
            results["server_cpu_s"] = round(_proc_cpu(server.pid) - cpu0, 1)
            results["server_peak_rss_mb"] = round(_proc_peak_rss_mb(server.pid), 1)
        finally:
            server.terminate()
            server.wait(120)
        if args.idle:  # a fresh server process: its memory is the sessions', not the bench's
            env = {"MSS_SERVER_WORKERS": str(args.idle_workers)} if args.idle_workers else {}
            server, ports = _start_server(data, env)
            cafile = str(data / "certs" / "ca.crt")
            try:
                results.update(asyncio.run(_idle(ports["imaps"], cafile, args.idle, server.pid)))
            finally:
                server.terminate()
                server.wait(120)
    return results


def main(args: argparse.Namespace) -> int:
    results = run(args)
    print_results(results, args.json)
    return 1 if results.get("stress_errors") else 0


if __name__ == "__main__":  # an IDLE client process of `_idle` (PORT CAFILE COUNT SOURCE)
    _soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (_hard, _hard))
    asyncio.run(_hold_idle(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]))
