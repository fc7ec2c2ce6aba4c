"""`./scripts/bench notify`: patients' notices by e-mail, from events to a smarthost.

`--events` events (new messages for `--patients` patients, coalescing off, no daily
ceiling) are committed at once in the outbox of a fresh installation; then `mss
serve` (its own process, 2 workers) sends their notices to a smarthost sink in this
process (aiosmtpd, STARTTLS). Printed: notices per second from the first event to the
last notice received, the lag from an event's commit to its notice at the sink
(p50, p99), the server's CPU, and that every notice arrived (by idempotency id).
"""

from __future__ import annotations

import argparse
import asyncio
import email
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from bench.smtp import _percentile, _proc_cpu, _start_server, print_results
from mss.config import load_settings
from mss.core.ins import control_key
from mss.store import outbox
from mss.store.api import Store
from mss.store.outbox import NewItem
from mss.testing.smarthost import smarthost


class Sink:
    """The smarthost: keeps each notice's id and the time it arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.repeats = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        notice = email.message_from_bytes(envelope.content)["X-MSS-Notification-Id"] or ""
        if notice in self.arrived:
            self.repeats += 1
        self.arrived.setdefault(notice, time.time())
        return "250 OK"


def _ins(n: int) -> str:
    first13 = f"1800175{n:06d}"[:13]
    return f"{first13}{control_key(first13):02d}"


def _patients_csv(path: Path, count: int) -> list[str]:
    lines = ["ins,family,given,birth_date,sex,email"]
    numbers = [_ins(n) for n in range(1, count + 1)]
    lines += [f"{ins},BENCH,PATIENT,1980-01-01,M,p{ins}@exemple.fr" for ins in numbers]
    path.write_text("\n".join(lines) + "\n")
    return numbers


def _mss(data: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "mss", *args, "--data-dir", str(data)],  # noqa: S603
                   check=True, capture_output=True, text=True)  # fmt: skip


def _add_events(data: Path, patients: list[str], count: int) -> dict[int, int]:
    """`count` new-message events, committed in one transaction; their ids → commit time."""
    settings = load_settings(data / "mss.toml")
    store = Store.open(settings.storage_url, settings.path(settings.storage.key_file),
                       migrate=False)  # fmt: skip
    try:
        events = [NewItem({"ins": patients[i % len(patients)], "event": "new_message"})
                  for i in range(count)]  # fmt: skip
        now = int(time.time())
        store.db.write_sync(lambda tx: outbox.add(tx, "notification", events, now))
        rows = store.db.read_sync(lambda c: outbox.list_items(c, kinds=["notification"],
                                                              limit=None))  # fmt: skip
    finally:
        store.db.close_sync()
    return {row.id: row.created for row in rows}


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mss-bench-notify-") as tmp:
        data = Path(tmp) / "data"
        subprocess.run([sys.executable, "-m", "mss", "init", "--data-dir", str(data)],  # noqa: S603
                       check=True, capture_output=True)  # fmt: skip
        patients = _patients_csv(Path(tmp) / "patients.csv", args.patients)
        _mss(data, "patient", "import", str(Path(tmp) / "patients.csv"))
        return asyncio.run(_measure(data, patients, args))


async def _measure(data: Path, patients: list[str], args: argparse.Namespace) -> dict[str, Any]:
    sink = Sink()
    with smarthost(sink, data / "certs") as port:
        return await _run(data, patients, args, sink, port)


async def _run(data: Path, patients: list[str], args: argparse.Namespace, sink: Sink,
               port: int) -> dict[str, Any]:  # fmt: skip
    env = {
        "MSS_NOTIFY_SMARTHOST": f"127.0.0.1:{port}", "MSS_NOTIFY_SMARTHOST_TLS": "starttls",
        "MSS_NOTIFY_SMARTHOST_CA": "certs/ca.crt", "MSS_NOTIFY_COALESCE_MINUTES": "0",
        "MSS_NOTIFY_DAILY_LIMIT": "1000000000",
    }  # fmt: skip
    server, _ = _start_server(data, env)
    try:
        await _until(lambda: len(sink.arrived) >= len(patients), 120)  # profiles
        sink.arrived.clear()
        cpu0, started = _proc_cpu(server.pid), time.time()
        events = _add_events(data, patients, args.events)
        await _until(lambda: len(sink.arrived) >= args.events, args.timeout)
        cpu = _proc_cpu(server.pid) - cpu0
    finally:
        server.terminate()
        server.wait(60)
    return _results(args, sink, events, started, cpu)


def _results(args: argparse.Namespace, sink: Sink, events: dict[int, int], started: float,
             cpu: float) -> dict[str, Any]:  # fmt: skip
    lags = [sink.arrived[n] - events[int(n.split("-")[0])] for n in sink.arrived
            if n.split("-")[0].isdigit() and int(n.split("-")[0]) in events]  # fmt: skip
    last = max(sink.arrived.values())
    received = len(sink.arrived)
    return {
        "events": args.events,
        "patients": args.patients,
        "notices_received": received,
        "repeats": sink.repeats,
        "notices_per_second": round(received / (last - started), 1),
        "lag_p50_s": round(_percentile(lags, 50), 2),
        "lag_p99_s": round(_percentile(lags, 99), 2),
        "server_cpu_seconds": round(cpu, 1),
        "server_cpu_ms_per_notice": round(1000 * cpu / max(1, received), 2),
    }


async def _until(condition: Any, seconds: float) -> None:
    deadline = time.time() + seconds
    while not condition():
        if time.time() > deadline:
            raise SystemExit("the notices did not all arrive in time")
        await asyncio.sleep(0.05)


def main(args: argparse.Namespace) -> int:
    print_results(run(args), args.json)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=10_000, help="events to notify (10000)")
    parser.add_argument("--patients", type=int, default=200, help="patients they concern (200)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds to wait at most")
    parser.add_argument("--json", help="also write the results to this JSON file")
