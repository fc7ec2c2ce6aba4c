"""`./scripts/bench space`: the patient space's pages with 200 patients browsing at once.

A throw-away instance (`mss serve`, 2 workers, SQLite unless `--backend postgresql`):
one patient with 10,000 messages in her mailbox, in conversations of 10 recorded as the
delivery pipeline records them (a conversation row, its professional, each message by
its Message-ID), and 20 DMP documents (mailed with an XDM, deposited by the outbox);
199 other patients with 5 messages each. Messages are written through the store in
concurrent batches (group commits), as `bench imap` fills its mailbox.

Then 200 clients (httpx, keep-alive, each with its own session: the first
`--big-clients` on the big mailbox, the others one patient each) browse for `--seconds`:
the messages list, one of their conversations (a link of that list), the documents,
the history. Twice: "browsing", each patient reading a page about `--think-ms` (5 s,
brisker than most people) before the next — some 40 pages a second in all; then
"saturation", every client asking again at once (200 requests always in flight: the
throughput, and latencies that are mostly queueing on this machine's cores). Printed
per page and phase: requests per second, p50/p95/p99, errors, and p99 against the
issue's anchor (p99 < 100 ms) as a ratio (≤ 1 meets it). The client's own CPU is
printed: on a small machine it competes with the server. A page that does not answer
200 (not built yet) is named and left out.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import re
import resource
import ssl
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.dmp import PASSWORD, PRO, PRO_ID, _mail, _send
from bench.notify import _patients_csv
from bench.smtp import _percentile, _proc_cpu, _start_server, print_results
from mss.config import load_settings
from mss.store.accounts import get_account
from mss.store.api import Store
from mss.store.conversations import open_conversation, record_message
from mss.store.dmp import count_documents
from mss.store.mailboxes import INBOX, Delivered, Target, mailbox_id
from mss.store.space import create_session
from mss.store.sql import Tx
from mss.testing.xdmgen import INS as BIG_INS

ANCHOR_P99_MS = 100.0  # the anchor: every page's p99 under 100 ms
COOKIE = "mss_espace"
DOMAIN = "patient.mssante.fr"
DOCTORS = [f"dr.suivi{n}@pro.mssante.test" for n in range(1, 6)]
PATHS = {"messages": "/espace/messages", "documents": "/espace/documents",
         "historique": "/espace/historique"}  # fmt: skip
PAGES = ("messages", "conversation", "documents", "historique")
_LINK = re.compile(r'href="(/espace/messages/(?!nouveau)[^"/?#]+)"')
_BODY = ("Bonjour,\r\n\r\nVoici les nouvelles de votre suivi. " * 24 + "\r\n").encode()


@dataclass(frozen=True)
class Client:
    token: str
    ins: str
    big: bool
    conversations: list[int]


@dataclass
class Samples:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    statuses: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))


# --- the instance --------------------------------------------------------------------------


def _mss(data: Path, env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    subprocess.run(  # noqa: S603
        [sys.executable, "-m", "mss", *args, "--data-dir", str(data)],
        input=stdin, capture_output=True, text=True, check=True, env={**os.environ, **env},
    )  # fmt: skip


def _prepare(root: Path, args: argparse.Namespace, env: dict[str, str]) -> tuple[Path, list[str]]:
    """`mss init`, the big patient, the others (CSV import), the DMP's professional."""
    data = root / "data"
    _mss(data, env, "init")
    _mss(data, env, "patient", "add", BIG_INS, "--family", "DE VINCI", "--given", "RUTH",
         "--birth-date", "1979-03-17", "--sex", "F")  # fmt: skip
    others = _patients_csv(root / "patients.csv", args.patients - 1)
    _mss(data, env, "patient", "import", str(root / "patients.csv"))
    _mss(data, env, "pro", "add", PRO, "--rpps", PRO_ID[1:], "--password-stdin",
         stdin=PASSWORD + "\n")  # fmt: skip
    return data, others


def _open_store(data: Path, env: dict[str, str]) -> Store:
    settings = load_settings(data / "mss.toml", env={**os.environ, **env})
    return Store.open(settings.storage_url, settings.path(settings.storage.key_file))


def _inbox(conn: Any, ins: str) -> int:
    account = get_account(conn, f"{ins}@{DOMAIN}")
    assert account is not None, ins
    return mailbox_id(conn, account.id, INBOX)


def _open_conversations(tx: Tx, plan: list[tuple[str, int]], thread: int) -> dict[str, list[int]]:
    """One conversation per `thread` messages, each with its professional."""
    opened: dict[str, list[int]] = {}
    for ins, count in plan:
        opened[ins] = [
            open_conversation(tx, patient_ins=ins, professional=DOCTORS[n % len(DOCTORS)],
                              subject=f"Suivi n°{n + 1}", display_name=f"Dr SUIVI {n % 5 + 1}")
            for n in range((count + thread - 1) // thread)
        ]  # fmt: skip
    return opened


def _message(ins: str, n: int, thread: int) -> tuple[bytes, str, str]:
    """Message `n` of a patient: its bytes, Message-ID and sender."""
    sender = DOCTORS[(n // thread) % len(DOCTORS)]
    message_id = f"<suivi-{ins}-{n}@pro.mssante.test>"
    subject = f"Suivi n°{n // thread + 1}"
    lines = [f"From: {sender}", f"To: {ins}@{DOMAIN}", f"Message-ID: {message_id}",
             "Date: Fri, 20 Nov 2026 10:30:00 +0100", "MIME-Version: 1.0",
             "Content-Type: text/plain; charset=utf-8"]  # fmt: skip
    if n % thread:
        lines += [f"Subject: Re: {subject}", f"In-Reply-To: <suivi-{ins}-{n - 1}@pro.mssante.test>"]
    else:
        lines.append(f"Subject: {subject}")
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + _BODY, message_id, sender


async def _deliver_all(
    store: Store, boxes: dict[str, int], opened: dict[str, list[int]], plan: list[tuple[str, int]],
    thread: int,
) -> None:  # fmt: skip
    """Every message, 64 at a time (the store groups them in commits), each recorded in
    its conversation in the transaction of its delivery, as the pipeline does."""
    gate = asyncio.Semaphore(64)

    async def one(ins: str, n: int) -> None:
        raw, message_id, sender = _message(ins, n, thread)
        conversation = opened[ins][n // thread]

        def record(tx: Tx, _delivered: Delivered) -> None:
            record_message(tx, conversation, message_id=message_id, sender=sender,
                           from_patient=False)  # fmt: skip

        async with gate:
            await store.deliver(raw, [Target(boxes[ins], flags=1 if n % 4 else 0)], also=record)

    try:
        await asyncio.gather(*(one(ins, n) for ins, count in plan for n in range(count)))
    finally:
        await store.close()


def _fill(
    data: Path, env: dict[str, str], others: list[str], args: argparse.Namespace
) -> tuple[dict[str, list[int]], list[Client]]:
    """The mailboxes and their conversations, and one session per client."""
    plan = [(BIG_INS, args.messages), *((ins, args.per_patient) for ins in others)]
    store = _open_store(data, env)
    boxes = store.db.read_sync(lambda c: {ins: _inbox(c, ins) for ins, _ in plan})
    opened = store.db.write_sync(lambda tx: _open_conversations(tx, plan, args.thread))
    clients = store.db.write_sync(lambda tx: _sessions(tx, others, opened, args))
    store.start()
    asyncio.run(_deliver_all(store, boxes, opened, plan, args.thread))
    return opened, clients


def _sessions(
    tx: Tx, others: list[str], opened: dict[str, list[int]], args: argparse.Namespace
) -> list[Client]:
    """A session per client, as a login opens it: the big mailbox's first, then one patient
    each (round robin if there are more clients than patients)."""
    now = int(time.time())
    owners = [BIG_INS] * min(args.big_clients, args.clients)
    pool = others or [BIG_INS]
    owners += [pool[n % len(pool)] for n in range(args.clients - len(owners))]
    clients = []
    for ins in owners:
        new = create_session(tx, account=f"{ins}@{DOMAIN}", ins=ins, representative=False,
                             now=now, lifetime=args.seconds + 3600)  # fmt: skip
        clients.append(Client(new.token, ins, ins == BIG_INS, opened[ins]))
    return clients


async def _documents(data: Path, env: dict[str, str], port: int, count: int) -> int:
    """Mail the big patient `count` documents (XDM of 5), wait for their deposit."""
    if count <= 0:
        return 0
    tls = ssl.create_default_context(cafile=str(data / "certs" / "ca.crt"))
    await _send(port, tls, [_mail(n) for n in range((count + 4) // 5)], 2)
    store = _open_store(data, env)
    try:
        for _ in range(1200):
            found = store.db.read_sync(lambda c: count_documents(c, BIG_INS))
            if found >= count:
                break
            await asyncio.sleep(0.05)
    finally:
        store.db.close_sync()
    if found < count:
        print(f"bench space: only {found} of {count} documents deposited", file=sys.stderr)
    return int(found)


# --- the load ------------------------------------------------------------------------------


def _web(base: str, tls: ssl.SSLContext, client: Client) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base, verify=tls, timeout=30, cookies={COOKIE: client.token},
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    )  # fmt: skip


async def _targets(web: httpx.AsyncClient, client: Client) -> dict[str, list[str]]:
    """Each page's paths for this client; a conversation is a link of its messages list
    (else the conversation's id in the store)."""
    listed = await web.get(PATHS["messages"])
    links = sorted(set(_LINK.findall(listed.text))) if listed.status_code == 200 else []
    links = links or [f"/espace/messages/{n}" for n in client.conversations]
    return {**{page: [path] for page, path in PATHS.items()}, "conversation": links}


async def _probe(base: str, tls: ssl.SSLContext, clients: list[Client]) -> dict[str, int]:
    """Each page's status for the big mailbox and for a small one (the worse of the two)."""
    statuses: dict[str, int] = {}
    for client in (clients[0], clients[-1]):
        async with _web(base, tls, client) as web:
            targets = await _targets(web, client)
            for page in PAGES:
                status = (await web.get(targets[page][0])).status_code
                if statuses.get(page, 200) == 200:
                    statuses[page] = status
    return statuses


async def _browse(
    base: str, tls: ssl.SSLContext, client: Client, pages: list[str], until: float,
    think: float, samples: Samples,
) -> None:  # fmt: skip
    """One patient going round the pages, one request at a time, until `until`, reading
    each page for `think` seconds on average (0: the next request at once)."""
    async with _web(base, tls, client) as web:
        targets = await _targets(web, client)
        turn = random.randrange(len(pages))
        await asyncio.sleep(random.uniform(0, think))  # the patients do not arrive together
        while time.perf_counter() < until:
            page = pages[turn % len(pages)]
            turn += 1
            label = f"{page} (big mailbox)" if client.big else page
            started = time.perf_counter()
            try:
                status = await _get(web, random.choice(targets[page]))
            except httpx.HTTPError:
                status = 0
            samples.latencies[label].append((time.perf_counter() - started) * 1000)
            samples.statuses[label].add(status)
            if status != 200:
                samples.errors[label] += 1
            if think:
                await asyncio.sleep(random.uniform(0.5 * think, 1.5 * think))


async def _get(web: httpx.AsyncClient, path: str) -> int:
    """A page's status, asked again once, as a browser does, when the server closed the
    kept-alive connection as the request left (its idle timeout, 5 s, is within the
    think time's range); the time of both counts."""
    try:
        return (await web.get(path)).status_code
    except httpx.RemoteProtocolError:
        return (await web.get(path)).status_code


async def _load(base: str, tls: ssl.SSLContext, clients: list[Client], pages: list[str],
                seconds: float, think: float) -> tuple[Samples, float]:  # fmt: skip
    samples = Samples()
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(*(_browse(base, tls, c, pages, until, think, samples) for c in clients))
    return samples, time.perf_counter() - started


# --- the figures ---------------------------------------------------------------------------


def _page_line(values: list[float], errors: int, elapsed: float) -> str:
    p99 = _percentile(values, 99)
    return (
        f"{len(values) / elapsed:8.1f} req/s  p50 {_percentile(values, 50):6.1f}  "
        f"p95 {_percentile(values, 95):6.1f}  p99 {p99:6.1f} ms  "
        f"p99/anchor {p99 / ANCHOR_P99_MS:5.2f} {'ok' if p99 <= ANCHOR_P99_MS else 'OVER'}"
        + (f"  errors {errors}" if errors else "")
    )


def _availability(statuses: dict[str, int]) -> dict[str, Any]:
    return {
        "pages_measured": ", ".join(p for p in PAGES if statuses.get(p) == 200) or "none",
        "pages_not_answering_200": ", ".join(
            f"{p} ({s})" for p, s in statuses.items() if s != 200) or "none",
        "anchor": f"p99 < {ANCHOR_P99_MS:.0f} ms on every page (issue 12)",
    }  # fmt: skip


def _figures(phase: str, samples: Samples, elapsed: float) -> dict[str, Any]:
    """One line a page (and the big mailbox's apart), under the phase's name."""
    every = [x for v in samples.latencies.values() for x in v]
    errors = sum(samples.errors.values())
    figures: dict[str, Any] = {
        f"{phase}: requests": len(every),
        f"{phase}: all pages": _page_line(every, errors, elapsed) if every else "-",
    }
    for label in sorted(samples.latencies):
        figures[f"{phase}: {label}"] = _page_line(
            samples.latencies[label], samples.errors[label], elapsed
        )
    return figures


def _backend(args: argparse.Namespace) -> tuple[dict[str, str], Callable[[], None]]:
    """The store's URL for `mss` (PostgreSQL: a temporary server) and how to stop it."""
    if args.backend != "postgresql":
        return {}, lambda: None
    from mss.testing.postgres import TemporaryPostgres

    postgres = TemporaryPostgres()
    return {"MSS_STORAGE_URL": postgres.start()}, postgres.stop


def run(args: argparse.Namespace) -> dict[str, Any]:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    env, stop_backend = _backend(args)
    try:
        with tempfile.TemporaryDirectory(prefix="mss-bench-space-") as tmp:
            return _run(Path(tmp), args, env)
    finally:
        stop_backend()


def _run(root: Path, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    data, others = _prepare(root, args, env)
    started = time.perf_counter()
    _opened, clients = _fill(data, env, others, args)
    results: dict[str, Any] = {
        "backend": args.backend, "workers": args.workers, "clients": len(clients),
        "patients": args.patients, "big_mailbox_messages": args.messages,
        "fill_s": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    server, ports = _start_server(data, {**env, "MSS_SERVER_WORKERS": str(args.workers)})
    try:
        results.update(_measure(data, env, ports, clients, args, server.pid))
    finally:
        server.terminate()
        server.wait(120)
    return results


def settle_client() -> None:
    """Keep this client's collector off its setup (the filled store's modules, 200
    clients): a full collection of this process would otherwise pause every request in
    flight for some 100 ms, a latency of the client and not of the server."""
    gc.collect()
    gc.freeze()


def _measure(data: Path, env: dict[str, str], ports: dict[str, int], clients: list[Client],
             args: argparse.Namespace, pid: int) -> dict[str, Any]:  # fmt: skip
    tls = ssl.create_default_context(cafile=str(data / "certs" / "ca.crt"))
    base = f"https://localhost:{ports['https']}"
    documents = asyncio.run(_documents(data, env, ports["submission"], args.documents))
    statuses = asyncio.run(_probe(base, tls, clients))
    pages = [p for p in PAGES if statuses.get(p) == 200]
    figures: dict[str, Any] = {"big_mailbox_documents": documents, "seconds": args.seconds,
                               **_availability(statuses)}  # fmt: skip
    phases = [(f"browsing (think {args.think_ms:.0f} ms)", args.think_ms / 1000)]
    if args.saturation:
        phases.append(("saturation (no think time)", 0.0))
    settle_client()
    for phase, think in phases if pages else []:
        cpu0, client0 = _proc_cpu(pid), time.process_time()
        samples, elapsed = asyncio.run(_load(base, tls, clients, pages, args.seconds, think))
        figures[f"{phase}: server_cpu_s"] = round(_proc_cpu(pid) - cpu0, 1)
        figures[f"{phase}: client_cpu_s"] = round(time.process_time() - client0, 1)
        figures.update(_figures(phase, samples, elapsed))
    return figures


def main(args: argparse.Namespace) -> int:
    results = run(args)
    print_results(results, args.json)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=30.0, help="browsing time (30)")
    parser.add_argument("--clients", type=int, default=200, help="concurrent patients (200)")
    parser.add_argument("--big-clients", type=int, default=10,
                        help="of them, on the big mailbox (10)")  # fmt: skip
    parser.add_argument("--patients", type=int, default=200, help="patients (200)")
    parser.add_argument("--messages", type=int, default=10_000, help="the big mailbox (10000)")
    parser.add_argument("--per-patient", type=int, default=5, help="messages of the others (5)")
    parser.add_argument("--thread", type=int, default=10, help="messages a conversation (10)")
    parser.add_argument("--documents", type=int, default=20, help="DMP documents, big one (20)")
    parser.add_argument("--think-ms", type=float, default=5000.0,
                        help="a patient's mean pause between pages (5000)")  # fmt: skip
    parser.add_argument("--no-saturation", dest="saturation", action="store_false",
                        help="skip the second run without pauses")  # fmt: skip
    parser.add_argument("--workers", type=int, default=2, help="mss serve workers (2)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--json", help="also write the results to this JSON file")
