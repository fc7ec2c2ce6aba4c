"""A delivery that returned survives `kill -9` of the process, exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from mss.store.accounts import add_account
from mss.store.api import Store
from mss.store.mailboxes import INBOX, mailbox_id
from mss.store.models import AccountKind, message_table
from mss.store.sql import Tx

CHILD = Path(__file__).with_name("crash_child.py")
ACKS_BEFORE_KILL = 600


def _prepare(db_url: str, key_file: Path) -> int:
    store = Store.open(db_url, key_file)

    def job(tx: Tx) -> int:
        account = add_account(tx, address="marie@pro.mssante.test", kind=AccountKind.PROFESSIONAL)
        return mailbox_id(tx.conn, account, INBOX)

    try:
        return store.db.write_sync(job)
    finally:
        store.db.close_sync()


@pytest.mark.slow
def test_acknowledged_deliveries_survive_kill_9_exactly_once(db_url: str, key_file: Path) -> None:
    box = _prepare(db_url, key_file)
    acked: list[str] = []
    with subprocess.Popen(
        [sys.executable, str(CHILD), db_url, str(key_file), str(box), "30"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    ) as child:
        assert child.stdout is not None
        try:
            for line in child.stdout:
                acked.append(line.strip())
                if len(acked) >= ACKS_BEFORE_KILL:
                    break
            os.kill(child.pid, signal.SIGKILL)  # in the middle of the burst
            acked.extend(line.strip() for line in child.stdout)  # acks already in the pipe
        finally:
            child.kill()
            child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert len(acked) >= ACKS_BEFORE_KILL

    store = Store.open(db_url, key_file, migrate=False)
    try:
        stored = store.db.read_sync(
            lambda c: [r.message_id for r in c.execute(select(message_table.c.message_id))]
        )
        uids = store.db.read_sync(lambda c: [r.uid for r in c.execute(select(message_table.c.uid))])
    finally:
        store.db.close_sync()
    counts = Counter(stored)
    missing = [m for m in acked if counts[m] == 0]
    assert missing == [], f"{len(missing)} acknowledged deliveries lost"
    assert max(counts.values()) == 1, "a message was stored twice"
    assert len(set(uids)) == len(uids)
    # Deliveries in flight at the kill may or may not be there, but never half-there.
    assert len(stored) >= len(acked)
