"""A PostgreSQL failover loses no acknowledged message (issue 15, "Database failover").

mss is given every node in one multi-host libpq URL (`target_session_attrs=read-write`);
what a failover interrupts before COMMIT is run again (reads and the writer's whole
batch), within a bounded window; a COMMIT that got no answer is answered 451, never 250.

The first tests break one connection on purpose (`pg_terminate_backend`, what a
primary going down does to its sessions) on the session's throw-away PostgreSQL.
The last one runs a pg_auto_failover formation (tests/pgformation.py: monitor,
primary, synchronous secondary), sends mail from several SMTP clients, kills the
primary with SIGKILL and counts: every message acknowledged 250 is in the database
of the new primary. It prints the unavailability window.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiosmtplib
import psycopg
import pytest
from sqlalchemy import Connection, event

from mss.errors import StoreError
from mss.store.accounts import add_account, get_account
from mss.store.api import Store
from mss.store.db import Database
from mss.store.failover import libpq_conninfo, multi_host_url
from mss.store.models import AccountKind
from mss.store.sql import Tx
from mss.testing import free_port

from .harness import PASSWORD, Running, message, running
from .pgformation import Formation, available

SENDER = "jean.dupont@pro.mssante.test"
RECIPIENT = "marie.martin@pro.mssante.test"


def _multi_host(url: str, *ports: int) -> str:
    """`url` with the hosts `127.0.0.1:p` for each port, in that order."""
    database = url.rsplit("/", 1)[1]
    hosts = ",".join(f"127.0.0.1:{port}" for port in ports)
    return f"postgresql://postgres@{hosts}/{database}?target_session_attrs=read-write"


def _port(url: str) -> int:
    found = re.search(r"127\.0\.0\.1:(\d+)/", url)
    assert found is not None, url
    return int(found.group(1))


async def _account_id(store: Store, address: str) -> int:
    found = await store.read(lambda c: get_account(c, address))
    assert found is not None
    return found.id


def _add(address: str) -> Callable[[Tx], int]:
    def job(tx: Tx) -> int:
        return add_account(tx, address=address, kind=AccountKind.PROFESSIONAL)

    return job


# --- the multi-host URL -------------------------------------------------------------------


def test_multi_host_url_is_given_to_sqlalchemy_as_repeated_hosts() -> None:
    url = "postgres://mss@db1:5432,db2:5433/mss?target_session_attrs=read-write"
    assert multi_host_url("postgresql+psycopg://" + url.split("://")[1]) == (
        "postgresql+psycopg://mss@/mss?host=db1:5432&host=db2:5433&target_session_attrs=read-write"
    )
    db = Database(url)
    assert db.url.startswith("postgresql+psycopg://mss@/mss?host=db1:5432&host=db2:5433")
    conninfo = libpq_conninfo(db.write_engine)  # LISTEN/NOTIFY reaches the same nodes
    assert "host=db1,db2" in conninfo and "port=5432,5433" in conninfo
    assert "target_session_attrs=read-write" in conninfo


async def test_multi_host_url_reaches_the_node_that_accepts_writes(
    postgres_url: str, instance: Path
) -> None:
    url = _multi_host(postgres_url, free_port(), _port(postgres_url))  # the first is down
    async with running(instance, env={"MSS_STORAGE_URL": url}, workers=2) as server:
        await server.add_pro(SENDER)
        await server.add_pro(RECIPIENT)
        reply = await server.submit(SENDER, message(SENDER, RECIPIENT), [RECIPIENT])
        assert reply.code == 250
        assert len(await server.inbox(RECIPIENT)) == 1


# --- what a failover interrupts is run again ----------------------------------------------


@pytest.fixture
def db_url(postgres_url: str) -> str:
    """The `store` fixture on PostgreSQL only: these tests end its sessions."""
    return postgres_url


async def test_a_write_batch_interrupted_before_commit_is_run_again_whole(store: Store) -> None:
    runs: list[int] = []

    def job(tx: Tx) -> int:
        runs.append(1)
        account = add_account(tx, address="b@pro.mssante.test", kind=AccountKind.PROFESSIONAL)
        if len(runs) == 1:  # the server ends the session after the INSERT, before COMMIT
            tx.conn.exec_driver_sql("SELECT pg_terminate_backend(pg_backend_pid())")
        return account

    account_id = await store.write(job)
    assert len(runs) == 2
    assert await _account_id(store, "b@pro.mssante.test") == account_id


def _lose_the_commit_answer(store: Store, *, commit_first: bool) -> list[int]:
    """At the writer's next COMMIT the server ends the session, after committing (the
    primary wrote it, its answer was lost) or before (the primary died first)."""
    calls: list[int] = []

    def before_commit(conn: Connection) -> None:
        calls.append(1)
        if len(calls) > 1:
            return
        raw = conn.connection.dbapi_connection
        assert raw is not None
        if commit_first:
            raw.commit()
        with contextlib.suppress(psycopg.Error):
            raw.cursor().execute("SELECT pg_terminate_backend(pg_backend_pid())")

    event.listen(store.db.write_engine, "commit", before_commit)
    return calls


@pytest.mark.parametrize("committed", [True, False], ids=["committed", "not-committed"])
async def test_a_commit_that_got_no_answer_is_settled_on_the_primary_of_now(
    store: Store, committed: bool
) -> None:
    runs: list[int] = []

    def job(tx: Tx) -> int:
        runs.append(1)
        return add_account(tx, address="c@pro.mssante.test", kind=AccountKind.PROFESSIONAL)

    await store.write(_add("warm@pro.mssante.test"))  # the writer is connected
    commits = _lose_the_commit_answer(store, commit_first=committed)
    account_id = await store.write(job)  # acknowledged: committed exactly once
    assert len(runs) == (1 if committed else 2)
    assert len(commits) == (1 if committed else 2)
    assert await _account_id(store, "c@pro.mssante.test") == account_id


async def test_a_write_refused_by_a_read_only_node_is_run_again_once_it_is_writable(
    store: Store, postgres_url: str
) -> None:
    # pg_auto_failover sets default_transaction_read_only while it promotes (stop_replication)
    admin = postgres_url.replace("+psycopg", "").rsplit("/", 1)[0] + "/postgres"
    database = postgres_url.rsplit("/", 1)[1]
    await store.write(_add("warm@pro.mssante.test"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (database,),
        )
    writing = asyncio.create_task(store.write(_add("d@pro.mssante.test")))
    await asyncio.sleep(1.5)
    assert not writing.done()  # refused (25006) and waiting, not failed
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{database}" RESET default_transaction_read_only')
    account_id = await asyncio.wait_for(writing, 20)
    assert await _account_id(store, "d@pro.mssante.test") == account_id


async def test_a_read_interrupted_by_a_failover_is_run_again(store: Store) -> None:
    runs: list[int] = []

    def read(conn: Connection) -> int:
        runs.append(1)
        if len(runs) == 1:
            conn.exec_driver_sql("SELECT pg_terminate_backend(pg_backend_pid())")
        return len(runs)

    assert await store.read(read) == 2


async def test_a_write_that_finds_no_primary_within_the_window_fails_and_the_writer_lives() -> None:
    db = Database(_multi_host("x/mss", free_port(), free_port()), failover_window=1.0)
    db.start()
    try:
        started = time.monotonic()
        with pytest.raises(StoreError):
            await asyncio.wait_for(db.write(lambda tx: 1), 20)
        assert 1.0 <= time.monotonic() - started < 10
        assert db._thread is not None and db._thread.is_alive()  # it serves the next write
        with pytest.raises(StoreError):
            await asyncio.wait_for(db.write(lambda tx: 1), 20)
    finally:
        await db.close()


# --- the pg_auto_failover formation ---------------------------------------------------------


@pytest.fixture
def formation() -> Iterator[Formation]:
    reason = available()
    if reason is not None:
        if os.environ.get("MSS_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"the failover test needs pg_auto_failover: {reason}")
        pytest.skip(reason)
    built = Formation()
    try:
        built.start()
        yield built
    finally:
        built.stop()


@dataclass(frozen=True, slots=True)
class Attempt:
    message_id: str
    started: float
    ended: float
    code: int  # the DATA reply; 0: the connection broke


async def _send(client: aiosmtplib.SMTP, message_id: str) -> int:
    body = message(SENDER, RECIPIENT, subject=message_id, message_id=message_id)
    try:
        await client.sendmail(SENDER, [RECIPIENT], body)
    except aiosmtplib.SMTPResponseException as exc:
        await client.rset()
        return exc.code
    return 250


async def _connect(server: Running) -> aiosmtplib.SMTP:
    client = aiosmtplib.SMTP(
        hostname="localhost", port=server.ports["submission"], start_tls=False, timeout=90,
        tls_context=server.client_tls(),
    )  # fmt: skip
    await client.connect()
    await client.starttls()
    await client.login(SENDER, PASSWORD)
    return client


async def _client(server: Running, n: int, stop: asyncio.Event, log: list[Attempt]) -> None:
    """Send one message after another; a message refused 4xx is sent again, as MTAs do."""
    client: aiosmtplib.SMTP | None = None
    seq = 0
    while not stop.is_set():
        seq += 1
        message_id = f"<c{n}-{seq}@failover.test>"
        code = 0
        while code != 250 and not stop.is_set():
            started = time.monotonic()
            try:
                client = client or await _connect(server)
                code = await _send(client, message_id)
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                code, client = 0, None
            log.append(Attempt(message_id, started, time.monotonic(), code))
            if code != 250:
                await asyncio.sleep(0.2)


def _figures(log: list[Attempt], killed: float) -> dict[str, float]:
    acks = sorted(a.ended for a in log if a.code == 250)
    around = [t for t in acks if t >= killed - 1]
    gaps = [(b - a, a) for a, b in itertools.pairwise(around)]
    stall, stall_from = max(gaps) if gaps else (0.0, killed)
    failures = [a for a in log if a.code != 250]
    window = 0.0
    if failures:  # from the first failure to the first 250 of an attempt begun after it
        first = min(failures, key=lambda a: a.started)
        window = min(a.ended for a in log if a.code == 250 and a.started >= first.ended)
        window -= first.started
    return {
        "acknowledged": len(acks),
        "acknowledged after the kill": sum(1 for t in acks if t > killed),
        "refused 4xx": sum(1 for a in failures if a.code),
        "connection broken": sum(1 for a in failures if not a.code),
        "first failure to the first success begun after it (s)": round(window, 2),
        "longest time without a 250 (s)": round(stall, 2),
        "that time began after the kill (s)": round(stall_from - killed, 2),
        "slowest acknowledged DATA (s)": round(
            max(a.ended - a.started for a in log if a.code == 250), 2
        ),
    }


async def _acknowledged_after(log: list[Attempt], killed: float, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not any(a.code == 250 and a.started > killed for a in log):
        assert time.monotonic() < deadline, f"no message acknowledged {timeout} s after the kill"
        await asyncio.sleep(0.1)


async def _stored_ids(server: Running) -> list[str]:
    found = []
    for raw in await server.inbox(RECIPIENT):
        match = re.search(rb"^Message-ID: (<[^>]+>)", raw, re.MULTILINE | re.IGNORECASE)
        assert match is not None
        found.append(match.group(1).decode())
    return found


def _writable_port(url: str) -> int:
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute("SELECT inet_server_port()").fetchone()
        assert row is not None
        return int(row[0])


@pytest.mark.slow
async def test_killing_the_primary_under_load_loses_no_acknowledged_message(
    formation: Formation, instance: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert formation.setting(0, "synchronous_standby_names")  # a COMMIT waits for node 2
    async with running(instance, env={"MSS_STORAGE_URL": formation.url}) as server:
        await server.add_pro(SENDER)
        await server.add_pro(RECIPIENT)
        stop, log = asyncio.Event(), list[Attempt]()
        clients = [asyncio.create_task(_client(server, n, stop, log)) for n in range(4)]
        await asyncio.sleep(3)
        killed = time.monotonic()
        await asyncio.to_thread(formation.kill_node, "node1")
        await _acknowledged_after(log, killed, 120)
        await asyncio.sleep(3)  # and it goes on, on the new primary
        stop.set()
        await asyncio.wait_for(asyncio.gather(*clients), 120)
        stored = await _stored_ids(server)
        unanswered = server.store.db.unanswered_commits
    acknowledged = {a.message_id for a in log if a.code == 250}
    lost = acknowledged - set(stored)
    figures = _figures(log, killed)
    figures |= {"lost": len(lost), "stored twice": len(stored) - len(set(stored))}
    figures["group commits left unanswered, settled on the new primary"] = unanswered
    with capsys.disabled():
        print("\nfailover (pg_auto_failover, primary killed with SIGKILL):")
        for name, value in figures.items():
            print(f"  {name}: {value}")
    assert not lost, sorted(lost)[:10]
    assert _writable_port(formation.url) == formation.ports[1]  # node 2 is the primary now
    assert figures["longest time without a 250 (s)"] < 60
