"""`mss bench store`: durable deliveries per second through the group commit.

N messages of SIZE bytes are delivered by W concurrent writers (asyncio tasks),
each to one of 100 mailboxes, through `Store.deliver`: parse (ENVELOPE and
BODYSTRUCTURE), AES-256-GCM encryption, and the group commit (one fsync or
PostgreSQL commit per batch). A delivery counts when `deliver` returns, i.e.
when it is durable. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from mss.store.accounts import add_account
from mss.store.api import Store
from mss.store.blobs import create_key_file
from mss.store.mailboxes import INBOX, Target, mailbox_id
from mss.store.models import AccountKind, message_table
from mss.store.sql import Tx
from mss.testing.postgres import TemporaryPostgres, find_pg_bin

MAILBOXES = 100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--messages", type=int, default=20000, help="messages to deliver (20000)")
    parser.add_argument("--writers", type=int, default=50, help="concurrent writers (50)")
    parser.add_argument("--size", type=int, default=10 * 1024, help="message size in bytes (10240)")
    parser.add_argument(
        "--backend",
        choices=["sqlite", "postgresql", "both"],
        default="both",
        help="which databases to measure (both)",
    )
    parser.add_argument("--postgres-url", help="PostgreSQL URL (default: start a temporary server)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")


def make_message(index: int, size: int) -> bytes:
    header = (
        f"From: Dr Jean Dupont <jean.dupont@pro.mssante.test>\r\n"
        f"To: 279035121518989@patient.mssante.fr\r\n"
        f"Subject: Compte rendu de consultation {index}\r\n"
        f"Date: Sun, 22 Nov 2026 10:00:00 +0100\r\n"
        f"Message-ID: <bench-{index}@pro.mssante.test>\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    ).encode()
    line = b"Compte rendu: examen clinique sans particularite, tension normale.\r\n"
    body = (line * (size // len(line) + 1))[: max(0, size - len(header))]
    return header + body


def _setup_mailboxes(store: Store) -> list[int]:
    def job(tx: Tx) -> list[int]:
        ids = []
        for i in range(MAILBOXES):
            account = add_account(
                tx, address=f"bench{i}@pro.mssante.test", kind=AccountKind.PROFESSIONAL
            )
            ids.append(mailbox_id(tx.conn, account, INBOX))
        return ids

    return store.db.write_sync(job)


async def _deliver_all(
    store: Store, boxes: list[int], messages: int, writers: int, size: int
) -> list[float]:
    latencies: list[float] = []
    counter = iter(range(messages))

    async def writer() -> None:
        for index in counter:
            raw = make_message(index, size)
            start = time.perf_counter()
            await store.deliver(raw, [Target(boxes[index % len(boxes)])])
            latencies.append(time.perf_counter() - start)

    await asyncio.gather(*(writer() for _ in range(writers)))
    return latencies


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def run_one(url: str, key_file: Path, messages: int, writers: int, size: int) -> dict[str, Any]:
    store = Store.open(url, key_file)
    boxes = _setup_mailboxes(store)
    store.start()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    batches0, jobs0 = store.db.batches, store.db.batched_jobs

    async def go() -> list[float]:
        try:
            return await _deliver_all(store, boxes, messages, writers, size)
        finally:
            await store.close()

    latencies = asyncio.run(go())
    elapsed = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    check = Store.open(url, key_file, migrate=False)
    stored = check.db.read_sync(
        lambda c: c.execute(select(func.count()).select_from(message_table)).scalar()
    )
    check.db.close_sync()
    batches = store.db.batches - batches0
    return {
        "backend": "sqlite" if url.startswith("sqlite") else "postgresql",
        "messages": messages,
        "stored": stored,
        "writers": writers,
        "size": size,
        "seconds": round(elapsed, 3),
        "messages_per_second": round(messages / elapsed, 1),
        "p50_ms": round(_percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(_percentile(latencies, 99) * 1000, 2),
        "commits": batches,
        "mean_batch": round((store.db.batched_jobs - jobs0) / max(1, batches), 1),
        "cpu_seconds": round((cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime), 2),
        "peak_rss_mb": round(cpu1.ru_maxrss / 1024, 1),
    }


def _print(results: list[dict[str, Any]]) -> None:
    columns = [
        "backend",
        "messages",
        "writers",
        "size",
        "messages_per_second",
        "p50_ms",
        "p99_ms",
        "commits",
        "mean_batch",
        "cpu_seconds",
        "peak_rss_mb",
    ]
    widths = {c: max(len(c), *(len(str(r[c])) for r in results)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for result in results:
        print("  ".join(str(result[c]).ljust(widths[c]) for c in columns))


def main(args: argparse.Namespace) -> int:
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mss-bench-") as tmp:
        key_file = Path(tmp) / "blob.keys"
        create_key_file(key_file)
        if args.backend in ("sqlite", "both"):
            url = f"sqlite:///{tmp}/bench.db"
            results.append(run_one(url, key_file, args.messages, args.writers, args.size))
        if args.backend in ("postgresql", "both"):
            if args.postgres_url:
                results.append(
                    run_one(args.postgres_url, key_file, args.messages, args.writers, args.size)
                )
            elif find_pg_bin() is not None:
                with TemporaryPostgres() as url:
                    results.append(run_one(url, key_file, args.messages, args.writers, args.size))
            else:
                print("PostgreSQL is not installed: skipped (give --postgres-url)")
    for result in results:
        if result["stored"] != result["messages"]:
            print(f"ERROR: {result['backend']} stored {result['stored']} of {result['messages']}")
            return 1
    _print(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0
