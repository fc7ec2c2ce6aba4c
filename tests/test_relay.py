"""Two mss instances acting as two operators of the trust space.

Both trust the same development root (the second operator's certificates are
issued by the first's PKI, as IGC-Santé issues every operator's), know each
other's DKIM keys, whitelist each other, and route to each other's MX.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import shutil
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from mss.security import pki
from mss.security.dkim import ensure_keys, public_record
from mss.security.pki import DevPKI
from mss.store.models import outbox_table
from mss.store.queue import QueuedRecipient, enqueue, list_entries
from mss.testing import free_port

from .conftest import run_mss
from .harness import PASSWORD, PORTS, Running, message, running

JEAN = "jean.dupont@pro.mssante.test"
PAUL = "paul.durand@autre.mssante.test"
INS = "279035121518989"
PATIENT = f"{INS}@patient.mssante.fr"


def _dkim_records(data_dir: Path, domains: list[str]) -> str:
    lines = []
    for domain in domains:
        for key in ensure_keys(data_dir / "dkim", domain, "mss-rsa", "mss-ed"):
            lines.append(f"{key.dns_name()} {public_record(key)}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def operator_b_template(instance_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`mss init` of a second operator whose certificates come from the first's PKI."""
    data = tmp_path_factory.mktemp("operator-b") / "data"
    result = run_mss("init", "--data-dir", str(data), "--domain", "autre.mssante.test",
                     "--hostname", "mail.autre.mssante.test")  # fmt: skip
    assert result.returncode == 0, result.stderr
    shutil.rmtree(data / "certs")
    shutil.copytree(instance_template / "certs", data / "certs")
    DevPKI(data / "certs").issue_server(
        "server", "mail.autre.mssante.test", ["autre.mssante.test", "patient.mssante.fr"]
    )
    return data


@contextlib.asynccontextmanager
async def operators(
    a_dir: Path, b_dir: Path, *, patients_at_b: bool = False
) -> AsyncIterator[tuple[Running, Running]]:
    a_mx, b_mx = free_port(), free_port()
    a_domains = ["pro.mssante.test", "hopital.mssante.test"] + (
        [] if patients_at_b else ["patient.mssante.fr"]
    )
    b_domains = ["autre.mssante.test"] + (["patient.mssante.fr"] if patients_at_b else [])
    (a_dir / "dkim" / "peer-keys.txt").write_text(_dkim_records(b_dir, b_domains))
    (b_dir / "dkim" / "peer-keys.txt").write_text(_dkim_records(a_dir, a_domains))
    to_b = dict.fromkeys(b_domains, f"127.0.0.1:{b_mx}")
    to_a = dict.fromkeys(a_domains, f"127.0.0.1:{a_mx}")
    fast_retry = {"retry_base": 1, "retry_max": 2}
    a_settings: dict[str, Any] = {
        "listen": {**PORTS, "mx": a_mx},
        "relay": {"routes": to_b, **fast_retry},
        "domains": {"host_patient_domain": not patients_at_b},
    }
    b_settings: dict[str, Any] = {
        "listen": {**PORTS, "mx": b_mx},
        "relay": {"routes": to_a, **fast_retry},
        # until the annuaire lands, B knows A's professionals from its configuration
        "policy": {"professionals": [JEAN]},
        "domains": {"professional": ["autre.mssante.test"], "host_patient_domain": patients_at_b},
        "server": {"hostname": "mail.autre.mssante.test"},
    }
    async with running(a_dir, overrides=a_settings) as a, running(b_dir, overrides=b_settings) as b:
        await a.trust(*b_domains)
        await b.trust(*a_domains)
        yield a, b


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


@pytest.fixture
def b_dir(operator_b_template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "operator-b"
    shutil.copytree(operator_b_template, target)
    return target


async def test_two_operators_exchange_mail_over_mutual_tls(instance: Path, b_dir: Path) -> None:
    async with operators(instance, b_dir) as (a, b):
        await a.add_pro(JEAN)
        await b.add_pro(PAUL)
        reply = await a.submit(
            JEAN,
            message(JEAN, PAUL, "Avis de l'opérateur A", message_id="<a1@pro.mssante.test>"),
            [PAUL],
        )
        assert reply.code == 250

        async def arrived_at_b() -> bool:
            return len(await b.inbox(PAUL)) == 1

        await eventually(arrived_at_b)
        [copy] = await b.inbox(PAUL)
        assert b"dkim=pass header.d=pro.mssante.test header.s=mss-rsa" in copy
        assert b"dkim=pass header.d=pro.mssante.test header.s=mss-ed" in copy
        assert copy.count(b"Received: from") == 2  # A's submission, then B's MX
        [entry] = await a.store.read(lambda c: list_entries(c, None))
        assert entry.status == "sent"

        # and back: B's professional answers through B, A's MX receives it
        await b.submit(
            PAUL,
            message(PAUL, JEAN, "Re: Avis", headers={"In-Reply-To": "<a1@pro.mssante.test>"}),
            [JEAN],
        )

        async def arrived_at_a() -> bool:
            return len(await a.inbox(JEAN)) == 1

        await eventually(arrived_at_a)


async def test_the_relay_resumes_its_tls_session_with_a_peer_it_reconnects_to(
    instance: Path, b_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Each relayed message is a connection of its own: the second one resumes the
    session of the first (no certificate signed or checked again on either side)."""
    caplog.set_level(logging.INFO, logger="mss.delivery.outbound")
    async with operators(instance, b_dir) as (a, b):
        await a.add_pro(JEAN)
        await b.add_pro(PAUL)
        for n in (1, 2):
            await a.submit(JEAN, message(JEAN, PAUL, f"Avis {n}"), [PAUL])

            async def arrived(n: int = n) -> bool:
                return len(await b.inbox(PAUL)) == n

            await eventually(arrived)
    handshakes = [r.getMessage() for r in caplog.records if "relay: TLS with" in r.getMessage()]
    # (a retry of either message would add a line between them)
    assert handshakes[0] == "relay: TLS with 127.0.0.1, TLSv1.3, full handshake"
    assert handshakes[-1] == "relay: TLS with 127.0.0.1, TLSv1.3, session resumed"
    # and both arrived: B's MX knew A by its certificate on the resumed session too


async def test_permanent_failure_at_the_peer_returns_a_dsn_to_the_author(
    instance: Path, b_dir: Path
) -> None:
    async with operators(instance, b_dir) as (a, _b):
        await a.add_pro(JEAN)
        nobody = "personne@autre.mssante.test"
        await a.submit(JEAN, message(JEAN, nobody, "Pour personne"), [nobody])

        async def bounced() -> bool:
            return len(await a.inbox(JEAN)) == 1

        await eventually(bounced)
        [dsn] = await a.inbox(JEAN)
        assert b"report-type=delivery-status" in dsn
        assert b"Status: 5.1.1" in dsn
        assert b"Action: failed" in dsn
        assert "Votre message n'a pas pu être remis".encode() in dsn
        assert b"Your message could not be delivered" in dsn
        assert b"Subject: Pour personne" in dsn  # the original headers (RET=HDRS by default)
        [entry] = await a.store.read(lambda c: list_entries(c, None))
        assert entry.status == "failed"


async def _peer_that_hangs_up_at_quit(tls: ssl.SSLContext, received: list[bytes]) -> asyncio.Server:
    """An SMTP peer (STARTTLS, then one message) that closes the connection when asked
    to QUIT instead of answering it."""

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 pair ESMTP\r\n")
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(b"250-pair\r\n250 STARTTLS\r\n")
            elif verb == b"STAR":
                writer.write(b"220 go\r\n")
                await writer.drain()
                await writer.start_tls(tls)
            elif verb == b"DATA":
                writer.write(b"354 go\r\n")
                await writer.drain()
                received.append(await reader.readuntil(b"\r\n.\r\n"))
                writer.write(b"250 2.0.0 pris\r\n")
            elif verb == b"QUIT":
                break  # no 221: the connection just ends
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
        writer.close()

    return await asyncio.start_server(session, "127.0.0.1", 0)


async def test_a_peer_hanging_up_at_quit_gets_the_message_once(instance: Path) -> None:
    """Its 250 after the data is what counts: the relay does not send it again."""
    certs = instance / "certs"
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(certs / "server.crt", certs / "server.key")
    received: list[bytes] = []
    peer = await _peer_that_hangs_up_at_quit(tls, received)
    port = peer.sockets[0].getsockname()[1]
    overrides = {"relay": {"routes": {"autre.mssante.test": f"127.0.0.1:{port}"},
                           "retry_base": 1, "retry_max": 1}}  # fmt: skip
    try:
        async with running(instance, overrides=overrides) as a:
            await a.trust("autre.mssante.test")
            await a.add_pro(JEAN)
            await a.submit(JEAN, message(JEAN, PAUL, "Une seule fois"), [PAUL])

            async def sent() -> bool:
                entries = await a.store.read(lambda c: list_entries(c, None))
                return [e.status for e in entries] == ["sent"]

            await eventually(sent)
            await asyncio.sleep(2.5)  # a retry would have come within a second or two
    finally:
        peer.close()
    assert len(received) == 1


async def test_operator_certificates_on_both_sides_an_expired_peer_is_not_resumed(
    instance: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DOMAIN.md: operator to operator, IGC-Santé certificates on both sides. A resumed
    handshake checks no certificate: the relay checks the peer's dates itself, forgets
    the session and retries (the next handshake is a full one)."""
    certs = instance / "certs"
    real_now = pki._now
    # a peer certificate issued so as to expire in 3 s (the dev PKI's last 3 years)
    monkeypatch.setattr(
        pki, "_now", lambda: real_now() - dt.timedelta(days=3 * 365) + dt.timedelta(seconds=3)
    )
    cert, key = DevPKI(certs).issue_server("issued/short-lived-peer", "127.0.0.1", [])
    monkeypatch.undo()
    expiry = pki.load_certificate(cert).not_valid_after_utc
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    received: list[bytes] = []
    peer = await _peer_that_hangs_up_at_quit(tls, received)
    port = peer.sockets[0].getsockname()[1]
    overrides = {"relay": {"routes": {"autre.mssante.test": f"127.0.0.1:{port}"},
                           "retry_base": 60}}  # fmt: skip
    try:
        async with running(instance, overrides=overrides) as a:
            await a.trust("autre.mssante.test")
            await a.add_pro(JEAN)

            async def statuses() -> list[tuple[str, str]]:
                entries = await a.store.read(lambda c: list_entries(c, None))
                return [(e.status, e.last_error or "") for e in entries]

            await a.submit(JEAN, message(JEAN, PAUL, "Avant"), [PAUL])
            await eventually(lambda: _equals(statuses(), [("sent", "")]))
            await asyncio.sleep((expiry - dt.datetime.now(dt.UTC)).total_seconds() + 1.0)
            await a.submit(JEAN, message(JEAN, PAUL, "Après"), [PAUL])

            async def refused() -> bool:
                return any("validity dates" in error for _, error in await statuses())

            await eventually(refused)
            assert a.app.mail is not None
            assert "127.0.0.1" not in a.app.mail.tls[1].current._sessions  # type: ignore[attr-defined]
    finally:
        peer.close()
    assert len(received) == 1


async def _equals(value: Awaitable[Any], expected: Any) -> bool:
    return await value == expected


async def test_unreachable_peer_is_retried_then_bounced_at_expiry(instance: Path) -> None:
    closed = free_port()  # nothing listens there
    overrides = {
        "relay": {"routes": {"autre.mssante.test": f"127.0.0.1:{closed}"}, "retry_base": 60}
    }
    async with running(instance, overrides=overrides) as a:
        await a.trust("autre.mssante.test")
        await a.add_pro(JEAN)
        await a.submit(JEAN, message(JEAN, PAUL, "Réseau coupé"), [PAUL])
        assert a.app.mail is not None
        runner = a.app.mail.runner

        async def tried_once() -> bool:
            entries = await a.store.read(lambda c: list_entries(c, None))
            return bool(entries) and entries[0].attempts == 1 and bool(entries[0].last_error)

        await eventually(tried_once)
        [entry] = await a.store.read(lambda c: list_entries(c, None))
        assert entry.status == "queued"
        assert entry.next_attempt >= entry.updated + 50  # backoff ~60 s
        assert "Connect" in (entry.last_error or "") or "connect" in (entry.last_error or "")
        # five days later: the queue gives up and tells the author
        await a.store.write(
            lambda tx: tx.conn.execute(update(outbox_table).values(due_at=0, expires=0))
        )
        await runner.run_once("relay")

        async def given_up() -> bool:
            [entry] = await a.store.read(lambda c: list_entries(c, None))
            return entry.status == "failed"

        await eventually(given_up)
        [dsn] = await a.inbox(JEAN)
        assert b"Status: 4.4.7" in dsn


async def test_patient_hosted_by_another_operator_replies_to_a_professional(
    instance: Path, b_dir: Path
) -> None:
    async with operators(instance, b_dir, patients_at_b=True) as (a, b):
        await a.add_pro(JEAN)
        await b.add_patient(INS, password=PASSWORD)
        # the patient cannot write first, even through their own operator
        with pytest.raises(Exception) as first:
            await b.submit(PATIENT, message(PATIENT, JEAN, "Bonjour"), [JEAN])
        assert "ne peut que répondre" in str(first.value)

        await a.submit(
            JEAN, message(JEAN, PATIENT, "Résultats", message_id="<j1@pro.mssante.test>"), [PATIENT]
        )

        async def at_patient() -> bool:
            return len(await b.inbox(PATIENT)) == 1

        await eventually(at_patient)
        reply = message(
            PATIENT, JEAN, "Re: Résultats", headers={"In-Reply-To": "<j1@pro.mssante.test>"}
        )
        assert (await b.submit(PATIENT, reply, [JEAN])).code == 250

        async def at_jean() -> bool:
            return len(await a.inbox(JEAN)) == 1

        await eventually(at_jean)
        [answer] = await a.inbox(JEAN)
        assert "Re: Résultats".encode() in answer


async def test_one_bad_row_never_sends_the_rest_of_its_batch_twice(
    instance: Path, b_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row whose address does not parse fails alone (with a DSN); a group whose send
    raises is retried alone; the rows that went out are never sent again."""
    async with operators(instance, b_dir) as (a, b):
        await a.add_pro(JEAN)
        await b.add_pro(PAUL)
        assert a.app.mail is not None
        relay = a.app.mail.runner._handlers["relay"]
        real = relay._transaction  # type: ignore[attr-defined]

        async def flaky(entries: list[Any]) -> Any:
            if entries[0].queue_id == "BROKEN":
                raise RuntimeError("a bug in one group")
            return await real(entries)

        monkeypatch.setattr(relay, "_transaction", flaky)
        now = int(time.time())
        bad = "x\r\nDATA@autre.mssante.test"

        def queue(queue_id: str, recipients: list[str]) -> Any:
            def add(tx: Any, delivered: Any) -> None:
                enqueue(
                    tx, blob_id=delivered.blob_id, queue_id=queue_id, mail_from=JEAN,
                    recipients=[QueuedRecipient(r, "autre.mssante.test") for r in recipients],
                    ret=None, envid=None, now=now, expires=now + 3600,
                )  # fmt: skip

            return add

        await a.store.deliver(message(JEAN, PAUL, "Lot"), [], also=queue("GOOD", [PAUL, bad]))
        await a.store.deliver(message(JEAN, PAUL, "Cassé"), [], also=queue("BROKEN", [PAUL]))

        async def settled() -> bool:
            entries = await a.store.read(lambda c: list_entries(c, None))
            return all((e.attempts >= 1 and e.last_error is not None) or e.status == "sent"
                       for e in entries)  # fmt: skip

        await eventually(settled)
        states = {(e.queue_id, e.rcpt_to): e.status for e in
                  await a.store.read(lambda c: list_entries(c, None))}  # fmt: skip
        assert states == {("GOOD", PAUL): "sent", ("GOOD", bad): "failed",
                          ("BROKEN", PAUL): "queued"}  # fmt: skip
        await asyncio.sleep(1.0)
        assert len(await b.inbox(PAUL)) == 1  # sent once
        [dsn] = await a.inbox(JEAN)  # the bad address, told once
        assert b"Status: 5.1.3" in dsn
