"""`kill -9` the server between the commit of events and the sending of their notices,
again and again, under load: every event is notified at least once, and every notice
carries its idempotency id (the receiver counts the repeats and can drop them)."""

from __future__ import annotations

import asyncio
import csv
import email
import os
import random
import signal
import ssl
import subprocess
import sys
from collections import Counter
from pathlib import Path

import aiosmtplib
import pytest

from mss.config import load_settings
from mss.store import notify as notes
from mss.store import outbox
from mss.store.api import Store
from mss.testing.smarthost import smarthost

from .conftest import SHARED_DATA, run_mss
from .harness import PASSWORD, message
from .notifying import Sink
from .test_serve import ALL_PORTS_FREE, stop_server, wait_ready

PRO = "jean.dupont@pro.mssante.test"
ROUNDS = 4
KINDS = ["notification", "notice_email"]


def _patients(target: Path) -> list[str]:
    """The ANS test identities, each with an e-mail address."""
    with (SHARED_DATA / "ans-test-patients.csv").open() as source:
        rows = list(csv.DictReader(source))
    with target.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["ins", "family", "given", "birth_date", "sex", "email"])
        for row in rows:
            writer.writerow([row["ins"], row["family"], row["given"], row["birth_date"],
                             row["sex"], f"p{row['ins'].lower()}@exemple.fr"])  # fmt: skip
    return [row["ins"] for row in rows]


def _serve(instance: Path, smtp_port: int) -> subprocess.Popen[str]:
    env = {
        **os.environ, **ALL_PORTS_FREE, "MSS_SERVER_WORKERS": "2",
        "MSS_NOTIFY_SMARTHOST": f"127.0.0.1:{smtp_port}", "MSS_NOTIFY_SMARTHOST_TLS": "starttls",
        "MSS_NOTIFY_SMARTHOST_CA": "certs/ca.crt", "MSS_NOTIFY_COALESCE_MINUTES": "0",
        "MSS_NOTIFY_DAILY_LIMIT": "100000",
    }  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "mss", "serve", "--data-dir", str(instance)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip


async def _load(
    instance: Path, port: int, patients: list[str], stop: asyncio.Event, going: asyncio.Event
) -> int:
    """Mail patients until `stop`; return how many the server accepted (250); `going` is
    set at the first 250."""
    tls = ssl.create_default_context(cafile=str(instance / "certs" / "ca.crt"))
    smtp = aiosmtplib.SMTP(hostname="localhost", port=port, start_tls=False, tls_context=tls)
    accepted = 0
    try:
        await smtp.connect()
        await smtp.starttls()
        await smtp.login(PRO, PASSWORD)
        while not stop.is_set():
            to = f"{random.choice(patients)}@patient.mssante.fr"
            await smtp.sendmail(PRO, [to], message(PRO, to, f"Résultat {accepted}"))
            accepted += 1
            going.set()
    except (aiosmtplib.SMTPException, OSError):
        pass  # the server was killed under us
    return accepted


async def _round(instance: Path, smtp_port: int, patients: list[str]) -> int:
    server = _serve(instance, smtp_port)
    try:
        port = (await asyncio.to_thread(wait_ready, server))["submission"]
        stop, going = asyncio.Event(), asyncio.Event()
        loads = [asyncio.create_task(_load(instance, port, patients, stop, going))
                 for _ in range(4)]  # fmt: skip
        # the kill falls while mail flows, however long the workers took to start
        await asyncio.wait_for(going.wait(), 60)
        await asyncio.sleep(random.uniform(0.2, 1.0))
        os.kill(server.pid, signal.SIGKILL)  # its workers die with it
        stop.set()
        return sum(await asyncio.gather(*loads))
    finally:
        stop_server(server, signal.SIGKILL)


@pytest.mark.slow
async def test_kill_9_between_commit_and_send_loses_no_notice(instance: Path) -> None:
    csv_file = instance / "patients.csv"
    patients = _patients(csv_file)
    assert run_mss("pro", "add", PRO, "--password-stdin", "--data-dir", str(instance),
                   stdin=PASSWORD + "\n").returncode == 0  # fmt: skip
    sink = Sink()
    with smarthost(sink, instance / "certs") as smtp_port:
        assert run_mss("patient", "import", str(csv_file), "--data-dir",
                       str(instance)).returncode == 0  # 62 profiles: 62 events  # fmt: skip
        accepted = [await _round(instance, smtp_port, patients) for _ in range(ROUNDS)]
        assert sum(accepted) > 0
        final = _serve(instance, smtp_port)
        try:
            await asyncio.to_thread(wait_ready, final)
            expected = await _wait_all_sent(instance)
        finally:
            assert stop_server(final) == 0
    ids = Counter(email.message_from_bytes(raw)["X-MSS-Notification-Id"] for _, _, raw in
                  sink.mail)  # fmt: skip
    missing = expected - set(ids)
    repeats = sum(n - 1 for n in ids.values())
    print(f"\n{len(expected)} notices sent for {62 + sum(accepted)} events acknowledged "
          f"(62 profiles, {sum(accepted)} messages answered 250 over {ROUNDS} kills; a message "
          f"stored as the kill fell, before its 250 got out, is notified too); "
          f"{len(sink.mail)} e-mails received, {repeats} repeats")  # fmt: skip
    assert missing == set()
    assert len(expected) >= 62 + sum(accepted)


async def _wait_all_sent(instance: Path) -> set[str]:
    """Wait until no event nor notice is left to do; the ids of the notices sent."""
    settings = load_settings(instance / "mss.toml")
    store = Store.open(settings.storage_url, settings.path(settings.storage.key_file),
                       migrate=False)  # fmt: skip
    try:
        for _ in range(600):
            left = store.db.read_sync(
                lambda c: outbox.list_items(c, kinds=KINDS, statuses=["pending", "dead"])
            )
            if not left:
                break
            await asyncio.sleep(0.2)
        assert left == []
        entries = store.db.read_sync(lambda c: notes.log_entries(c, limit=100_000))
    finally:
        store.db.close_sync()
    assert {e.status for e in entries} == {"sent"}
    return {e.notice_id for e in entries}
