"""`mss bench smtp`: messages per second through SMTP, end to end into the mailbox.

Default: a throw-away instance (`mss init` in a temporary folder) runs as its
own `mss serve` process; C client connections (STARTTLS, AUTH PLAIN once each)
send N messages of SIZE bytes from a professional to a patient. A message
counts when the server answered 250, i.e. after its group commit. Printed: the
rate, the DATA → 250 latency (p50/p99), the server's CPU time and peak RSS, and
a check that every message is in the patient's mailbox.

`--door mx` sends through the MX instead, as another operator would: mutual TLS
with an operator certificate, each message DKIM-signed (verified by the server).

`--target HOST:PORT` points the same load at another SMTP server (a Postfix,
say) with `--user/--password/--from/--to`, so that a comparison is one tool in
one run. With `--maildir DIR` the run ends only when DIR (new/ and cur/) holds
every message sent, so that a queueing server's figure is end to end into the
mailbox too; `--server-pid PID` (repeated) counts those processes' CPU time, and
their children's, as the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosmtplib

from bench.delivered import maildir_count, tree_cpu, wait_for_maildir
from mss.security.tls import client_context, remember_session

PRO = "jean.dupont@pro.mssante.test"
PATIENT_INS = "279035121518989"
PATIENT = f"{PATIENT_INS}@patient.mssante.fr"
PASSWORD = "mot-de-passe-du-banc"  # noqa: S105 - a throw-away instance
PEER_DOMAIN = "autre.mssante.test"
PEER_PRO = f"paul.durand@{PEER_DOMAIN}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--messages", type=int, default=5000, help="messages to send (5000)")
    parser.add_argument("--connections", type=int, default=20, help="concurrent connections (20)")
    parser.add_argument("--size", type=int, default=10 * 1024, help="message size in bytes (10240)")
    parser.add_argument("--door", choices=["submission", "mx"], default="submission")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--target", help="HOST:PORT of another SMTP server to load instead")
    parser.add_argument("--user", help="with --target: login (no AUTH if absent)")
    parser.add_argument("--password", help="with --target: password")
    parser.add_argument("--from", dest="sender", help="with --target: envelope sender")
    parser.add_argument("--to", dest="recipient", help="with --target: recipient")
    parser.add_argument("--no-starttls", action="store_true", help="with --target: plain SMTP")
    parser.add_argument("--maildir", type=Path, help="with --target: wait until it holds them all")
    parser.add_argument("--server-pid", type=int, action="append", default=[],
                        help="with --target: a server process whose tree's CPU counts")  # fmt: skip
    parser.add_argument(
        "--per-connection",
        type=int,
        default=0,
        metavar="N",
        help="a new connection (and TLS handshake) every N messages, as "
        "operators that reconnect do (0: one connection for all, the default)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="each new connection offers the last TLS session (resumption)",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")


def make_message(index: int, size: int, sender: str, recipient: str) -> bytes:
    header = (
        f"From: {sender}\r\nTo: {recipient}\r\nSubject: Compte rendu {index}\r\n"
        "Date: Sun, 22 Nov 2026 10:00:00 +0100\r\n"
        f"Message-ID: <bench-{index}-{time.time_ns()}@bench.test>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    ).encode()
    line = b"Compte rendu: examen clinique sans particularite, tension normale.\r\n"
    return header + (line * (size // len(line) + 1))[: max(0, size - len(header))]


@dataclass
class Load:
    host: str
    port: int
    tls: ssl.SSLContext | None
    user: str | None
    password: str | None
    sender: str
    recipient: str
    sign: Any = None  # a function adding DKIM signatures (MX door)
    per_connection: int = 0  # messages per connection (0: all)
    handshakes: int = 0  # TLS handshakes, and how many resumed a session
    resumed: int = 0


async def _connection(
    load: Load, indexes: Any, size: int, latencies: list[float], ready: dict[int, bytes]
) -> None:
    """One client: a connection for `per_connection` messages, then a new one, until
    the messages run out (no connection opened for none)."""
    while (first := next(indexes, None)) is not None:
        await _one_connection(load, itertools.chain([first], indexes), size, latencies, ready)


async def _one_connection(
    load: Load, indexes: Any, size: int, latencies: list[float], ready: dict[int, bytes]
) -> None:
    """Send on one connection, `per_connection` messages at most (0: all)."""
    client = aiosmtplib.SMTP(hostname=load.host, port=load.port, start_tls=False,
                             tls_context=load.tls, timeout=60)  # fmt: skip
    await client.connect()
    sent = 0
    try:
        if load.tls is not None:
            await client.starttls()
            await client.ehlo()  # the server has spoken: a TLS 1.3 session ticket is in
            ssl_object = client.get_transport_info("ssl_object")
            load.handshakes += 1
            load.resumed += ssl_object.session_reused
            remember_session(load.tls, load.host, ssl_object)
        if load.user:
            await client.login(load.user, load.password or "")
        for index in indexes:
            raw = ready.pop(index, None) or make_message(index, size, load.sender, load.recipient)
            await client.mail(load.sender)
            await client.rcpt(load.recipient)
            started = time.perf_counter()
            await client.data(raw)
            latencies.append(time.perf_counter() - started)
            sent += 1
            if sent == load.per_connection:
                break
        await client.quit()
    finally:
        client.close()


async def run_load(
    load: Load, messages: int, connections: int, size: int
) -> tuple[float, list[float], float]:
    """Send; return the elapsed time, the DATA latencies and the client's own CPU time."""
    latencies: list[float] = []
    indexes = iter(range(messages))
    # Signing (MX door) is the peer's work, not the server's: done before the clock starts.
    ready = {
        i: load.sign(make_message(i, size, load.sender, load.recipient))
        for i in (range(messages) if load.sign is not None else ())
    }
    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(
        *(_connection(load, indexes, size, latencies, ready) for _ in range(connections))
    )
    return time.perf_counter() - started, latencies, time.process_time() - cpu


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))] if ordered else 0.0


def print_results(results: dict[str, Any], json_path: str | Path | None) -> None:
    """The figures as an aligned table on stdout, and as JSON in `json_path` if given."""
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key.ljust(width)}  {value}")
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=2))


def _proc_cpu(pid: int) -> float:
    """CPU seconds of a process and its live children (the DKIM worker processes)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _proc_tree(pid: int) -> list[int]:
    """The process and its children (the workers of `mss serve`, DKIM processes)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [pid, *(int(c) for c in children.read_text().split())]
    except OSError:
        return [pid]


def _proc_memory_mb(pid: int, field: str = "VmHWM") -> float:
    """Sum over the process tree of a /proc status field: VmHWM (each process's peak
    resident memory; their sum bounds the peak of the whole) or VmRSS (now)."""
    total = 0.0
    for member in _proc_tree(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith(field + ":"):
                total += int(line.split()[1]) / 1024
    return total


def _proc_peak_rss_mb(pid: int) -> float:
    return _proc_memory_mb(pid, "VmHWM")


def _proc_pss_mb(pid: int) -> float:
    """Proportional set size of the process tree: pages shared by the forked
    workers (code, libraries, the master's heap) are counted once, not per process."""
    total = 0.0
    for member in _proc_tree(pid):
        try:
            lines = Path(f"/proc/{member}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith("Pss:"):
                total += int(line.split()[1]) / 1024
    return total


class PeakMemory:
    """Samples the process tree's PSS on a thread (every `interval` s) and keeps the
    highest: the real peak of the whole server, which no /proc field gives."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self._pid = pid
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pss-sampler", daemon=True)
        self.peak_mb = 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, _proc_pss_mb(self._pid))
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, _proc_pss_mb(self._pid))


def _mss(
    *args: str, data: Path, stdin: str | None = None, env: dict[str, str] | None = None
) -> None:
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "mss", *args, "--data-dir", str(data)] if args[0] != "init" else
        [sys.executable, "-m", "mss", *args],
        input=stdin, capture_output=True, text=True, check=False, env={**os.environ, **(env or {})},
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"mss {' '.join(args)} failed: {result.stderr.strip()}")


def _prepare_instance(root: Path, door: str, env: dict[str, str]) -> Path:
    data = root / "data"
    _mss("init", "--data-dir", str(data), data=data)
    _mss("pro", "add", PRO, "--password-stdin", data=data, stdin=PASSWORD + "\n", env=env)
    _mss("patient", "add", PATIENT_INS, "--family", "PAT-TROIS", "--given", "DOMINIQUE",
         "--birth-date", "1979-03-28", "--sex", "F", data=data, env=env)  # fmt: skip
    if door == "mx":
        whitelist = root / "whitelist.xml"
        whitelist.write_text(
            '<ListeBlanche xmlns="https://listeblanche.mssante.fr/schema">'
            f"<Domaine><Nom>{PEER_DOMAIN}</Nom></Domaine></ListeBlanche>"
        )
        _mss("trust", "import", str(whitelist), data=data, env=env)
    return data


def _peer_signer(data: Path) -> Any:
    """DKIM-sign as the peer operator, and publish its key to the server."""
    import dkim

    from mss.security.dkim import ensure_keys, public_record

    key = ensure_keys(data / "peer-dkim", PEER_DOMAIN, "peer-rsa", "peer-ed")[0]
    (data / "dkim" / "peer-keys.txt").write_text(f"{key.dns_name()} {public_record(key)}\n")
    secret = key.private_key()

    headers = [b"from", b"to", b"subject", b"date", b"message-id"]

    def sign(raw: bytes) -> bytes:
        signature: bytes = dkim.sign(
            raw, b"peer-rsa", PEER_DOMAIN.encode(), secret, include_headers=headers
        )
        return signature + raw

    return sign


def _start_server(data: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], dict[str, int]]:
    ports = {
        f"MSS_LISTEN_{n}": "0"
        for n in ("MX", "SUBMISSION", "SUBMISSIONS", "IMAP", "IMAPS", "HTTPS")
    }
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "mss", "serve", "--data-dir", str(data)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        env={**os.environ, **ports, **env},
    )  # fmt: skip
    assert server.stderr is not None
    for line in server.stderr:
        match = re.search(r"serving \((.*)\)", line)
        if match:
            pairs = (item.split() for item in match.group(1).split(", "))
            # stop reading stderr: send it to nowhere so the server never blocks on it
            threading_drain(server)
            return server, {name: int(port) for name, port in pairs}
    raise SystemExit("mss serve did not start")


def threading_drain(process: subprocess.Popen[str]) -> None:
    import threading

    def drain() -> None:
        assert process.stderr is not None
        for _ in process.stderr:
            pass

    threading.Thread(target=drain, daemon=True).start()


def _stored_messages(data: Path, env: dict[str, str]) -> int:
    from sqlalchemy import func, select

    from mss.config import load_settings
    from mss.store.api import Store
    from mss.store.models import message_table

    settings = load_settings(data / "mss.toml", env={**os.environ, **env})
    store = Store.open(
        settings.storage_url, settings.path(settings.storage.key_file), migrate=False
    )
    try:
        count = store.db.read_sync(
            lambda c: c.execute(select(func.count()).select_from(message_table)).scalar()
        )
    finally:
        store.db.close_sync()
    return int(count or 0)


def bench_mss(args: argparse.Namespace) -> dict[str, Any]:
    from mss.testing.postgres import TemporaryPostgres

    with tempfile.TemporaryDirectory(prefix="mss-bench-smtp-") as tmp:
        root = Path(tmp)
        postgres = TemporaryPostgres() if args.backend == "postgresql" else None
        env = {"MSS_STORAGE_URL": postgres.start()} if postgres else {}
        if args.door == "mx":  # until the annuaire, the peer's professional is configured
            env["MSS_POLICY_PROFESSIONALS"] = PEER_PRO
        try:
            data = _prepare_instance(root, args.door, env)
            sign = _peer_signer(data) if args.door == "mx" else None
            server, ports = _start_server(data, env)
            try:
                cert = key = None
                if args.door == "mx":
                    from mss.security.pki import DevPKI

                    cert, key = DevPKI(data / "certs").issue_operator(
                        "mx." + PEER_DOMAIN, [PEER_DOMAIN]
                    )
                ca = client_context(ca=data / "certs" / "ca.crt", cert=cert, key=key,
                                    resume=args.resume)  # fmt: skip
                if args.door == "mx":
                    load = Load("localhost", ports["mx"], ca, None, None, PEER_PRO, PATIENT, sign)
                else:
                    load = Load("localhost", ports["submission"], ca, PRO, PASSWORD, PRO, PATIENT)
                load.per_connection = args.per_connection
                cpu0 = _proc_cpu(server.pid)
                elapsed, latencies, client_cpu = asyncio.run(
                    run_load(load, args.messages, args.connections, args.size)
                )
                cpu = _proc_cpu(server.pid) - cpu0
                rss = _proc_peak_rss_mb(server.pid)
            finally:
                server.send_signal(signal.SIGTERM)
                server.wait(60)
            stored = _stored_messages(data, env)
        finally:
            if postgres is not None:
                postgres.stop()
    return {
        **_result(args, "mss", elapsed, latencies, cpu=cpu, rss=rss, stored=stored,
                  client_cpu=client_cpu),
        "tls_handshakes": load.handshakes,
        "tls_resumed": load.resumed,
    }  # fmt: skip


def bench_target(args: argparse.Namespace) -> dict[str, Any]:
    host, _, port = args.target.rpartition(":")
    if not args.sender or not args.recipient:
        raise SystemExit("--target needs --from and --to")
    tls = None
    if not args.no_starttls:
        tls = (
            client_context(ca=None, check_hostname=False, resume=True)
            if args.resume
            else ssl.create_default_context()
        )
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE  # comparisons on loopback with self-signed certificates
    load = Load(host, int(port), tls, args.user, args.password, args.sender, args.recipient)
    load.per_connection = args.per_connection
    before = maildir_count(args.maildir) if args.maildir else 0
    cpu0 = tree_cpu(args.server_pid)
    elapsed, latencies, client_cpu = asyncio.run(
        run_load(load, args.messages, args.connections, args.size)
    )
    stored = None
    if args.maildir:  # the run ends when the last message is in the mailbox
        waited = time.perf_counter()
        stored = wait_for_maildir(args.maildir, before + args.messages) - before
        elapsed += time.perf_counter() - waited
    cpu = tree_cpu(args.server_pid) - cpu0 if args.server_pid else None
    return _result(args, args.target, elapsed, latencies, cpu=cpu, rss=None, stored=stored,
                   client_cpu=client_cpu)  # fmt: skip


def _result(
    args: argparse.Namespace, server: str, elapsed: float, latencies: list[float], *,
    cpu: float | None, rss: float | None, stored: int | None, client_cpu: float,
) -> dict[str, Any]:  # fmt: skip
    return {
        "server": server,
        "door": args.door if not args.target else "target",
        "backend": args.backend if not args.target else None,
        "messages": args.messages,
        "connections": args.connections,
        "size": args.size,
        "seconds": round(elapsed, 2),
        "messages_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(_percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(_percentile(latencies, 99) * 1000, 1),
        "server_cpu_seconds": None if cpu is None else round(cpu, 1),
        "server_peak_rss_mb": None if rss is None else round(rss, 1),
        "client_cpu_seconds": round(client_cpu, 1),
        "stored": stored,
    }


def main(args: argparse.Namespace) -> int:
    result = bench_target(args) if args.target else bench_mss(args)
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key.ljust(width)}  {value}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if result["stored"] is not None and result["stored"] != args.messages:
        print(f"ERROR: {result['stored']} messages stored, {args.messages} sent")
        return 1
    return 0
