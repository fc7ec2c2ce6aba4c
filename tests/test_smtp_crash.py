"""Under load, `kill -9` the server: every message answered 250 is stored exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import aiosmtplib
import pytest
from sqlalchemy import select

from mss.config import load_settings
from mss.store.api import Store
from mss.store.models import message_table

from .conftest import run_mss
from .harness import PASSWORD, message
from .test_serve import ALL_PORTS_FREE, stop_server, wait_ready

JEAN = "jean.dupont@pro.mssante.test"
MARIE = "marie.martin@pro.mssante.test"
ACKS_BEFORE_KILL = 300


@pytest.mark.slow
async def test_messages_answered_250_survive_kill_9_exactly_once(instance: Path) -> None:
    assert run_mss("pro", "add", JEAN, "--password-stdin", "--data-dir", str(instance),
                   stdin=PASSWORD + "\n").returncode == 0  # fmt: skip
    assert run_mss("pro", "add", MARIE, "--data-dir", str(instance)).returncode == 0
    server = subprocess.Popen(
        [sys.executable, "-m", "mss", "serve", "--data-dir", str(instance)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        env={**os.environ, **ALL_PORTS_FREE},
    )  # fmt: skip
    acked: list[str] = []
    try:
        port = (await asyncio.to_thread(wait_ready, server))["submission"]
        ctx_ca = instance / "certs" / "ca.crt"
        killed = asyncio.Event()

        async def client(n: int) -> None:
            import ssl

            tls = ssl.create_default_context(cafile=str(ctx_ca))
            smtp = aiosmtplib.SMTP(
                hostname="localhost", port=port, start_tls=False, tls_context=tls
            )
            try:
                await smtp.connect()
                await smtp.starttls()
                await smtp.login(JEAN, PASSWORD)
                i = 0
                while not killed.is_set():
                    msgid = f"<c{n}-{i}@crash.test>"
                    await smtp.sendmail(
                        JEAN,
                        [MARIE],
                        message(
                            JEAN, MARIE, f"charge {i}", ("x" * 78 + "\r\n") * 50, message_id=msgid
                        ),
                    )
                    acked.append(msgid)  # the server answered 250
                    i += 1
                    if len(acked) >= ACKS_BEFORE_KILL and not killed.is_set():
                        os.kill(server.pid, signal.SIGKILL)
                        killed.set()
            except (aiosmtplib.SMTPException, OSError) as exc:
                if not killed.is_set():
                    raise AssertionError(f"client {n} failed before the kill: {exc!r}") from exc

        await asyncio.wait_for(asyncio.gather(*(client(n) for n in range(10))), 120)
    finally:
        stop_server(server, signal.SIGKILL)
    assert server.returncode == -signal.SIGKILL
    assert len(acked) >= ACKS_BEFORE_KILL

    # restart on the same data: it comes up, and the messages are there, each once
    restarted = subprocess.Popen(
        [sys.executable, "-m", "mss", "serve", "--data-dir", str(instance)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        env={**os.environ, **ALL_PORTS_FREE},
    )  # fmt: skip
    try:
        await asyncio.to_thread(wait_ready, restarted)
        settings = load_settings(instance / "mss.toml")
        store = Store.open(
            settings.storage_url, settings.path(settings.storage.key_file), migrate=False
        )
        try:
            stored = store.db.read_sync(
                lambda c: [r[0] for r in c.execute(select(message_table.c.message_id))]
            )
        finally:
            store.db.close_sync()
    finally:
        assert stop_server(restarted) == 0
    counts = Counter(stored)
    assert [m for m in acked if counts[m] != 1] == []
    assert max(counts.values()) == 1
