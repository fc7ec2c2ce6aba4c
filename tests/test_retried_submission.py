"""A retried message is stored once: same Message-ID, envelope sender, recipients and
bytes within 15 minutes (a client that lost the 250 and sends again), over real SMTP
clients.

Anything else is a new message: other recipients, another sender, other bytes, no
Message-ID, or after the window. A message refused the first time leaves no mark: its
retry is judged afresh. The check and the copies commit in one transaction, so two
identical messages at the same instant are stored once too.
"""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Callable
from pathlib import Path

import aiosmtplib
import pytest
from sqlalchemy import text

from mss.store.api import Store
from mss.store.queue import list_entries
from mss.store.recent import claim, purge_recent
from mss.store.sql import Tx

from .harness import PASSWORD, Running, message

JEAN = "jean.dupont@pro.mssante.test"
MARIE = "marie.martin@pro.mssante.test"
PAUL = "paul.bernard@hopital.mssante.test"
INS = "279035121518989"
PATIENT = f"{INS}@patient.mssante.fr"
MSGID = "<retry-1@pro.mssante.test>"


@pytest.fixture
async def team(mss: Running) -> Running:
    for pro in (JEAN, MARIE, PAUL):
        await mss.add_pro(pro)
    return mss


def _queue_id(reply: aiosmtplib.SMTPResponse) -> str:
    return reply.message.rsplit(" ", 1)[-1]


async def test_a_retried_submission_is_stored_once(team: Running) -> None:
    raw = message(JEAN, MARIE, message_id=MSGID)
    first = await team.submit(JEAN, raw, [MARIE])
    again = await team.submit(JEAN, raw, [MARIE])
    assert first.code == again.code == 250
    assert _queue_id(again) == _queue_id(first)  # the client hears the id it missed
    assert len(await team.inbox(MARIE)) == 1


async def _send_and_hang_up(mss: Running, raw: bytes, recipients: list[str]) -> None:
    """DATA sent whole, the connection closed before the reply is read: the 250 is lost.
    smtplib, blocking, in a thread: `sendall` hands every byte to the kernel before the
    close (asyncio's close on Python 3.13.0 could drop a write still buffered: gh-115514)."""

    def client() -> None:
        port, tls = mss.ports["submissions"], mss.client_tls()
        smtp = smtplib.SMTP_SSL("localhost", port, context=tls, timeout=30)
        try:  # not `with`: its end sends QUIT and reads the reply, the 250 to lose
            smtp.login(JEAN, PASSWORD)
            assert smtp.mail(JEAN)[0] == 250
            for rcpt in recipients:
                assert smtp.rcpt(rcpt)[0] == 250
            smtp.putcmd("data")
            assert smtp.getreply()[0] == 354
            smtp.send(raw + (b"" if raw.endswith(b"\r\n") else b"\r\n") + b".\r\n")
        finally:
            smtp.close()  # without reading the reply

    await asyncio.to_thread(client)


async def test_a_submission_whose_250_was_lost_is_stored_once(team: Running) -> None:
    raw = message(JEAN, MARIE, message_id=MSGID)
    await _send_and_hang_up(team, raw, [MARIE])
    for _ in range(600):  # the server finishes the message it read whole (as Postfix does)
        if await team.inbox(MARIE):
            break
        await asyncio.sleep(0.05)
    assert len(await team.inbox(MARIE)) == 1
    reply = await team.submit(JEAN, raw, [MARIE])  # the client, without its 250, retries
    assert reply.code == 250
    assert len(await team.inbox(MARIE)) == 1


async def test_identical_submissions_at_the_same_instant_are_stored_once(team: Running) -> None:
    raw = message(JEAN, MARIE, message_id=MSGID)
    replies = await asyncio.gather(*(team.submit(JEAN, raw, [MARIE]) for _ in range(6)))
    assert {r.code for r in replies} == {250}
    assert len({_queue_id(r) for r in replies}) == 1
    assert len(await team.inbox(MARIE)) == 1


async def test_the_same_message_to_other_recipients_is_a_new_message(team: Running) -> None:
    raw = message(JEAN, f"{MARIE}, {PAUL}", message_id=MSGID)
    await team.submit(JEAN, raw, [MARIE])
    await team.submit(JEAN, raw, [MARIE, PAUL])
    await team.submit(JEAN, raw, [PAUL, MARIE])  # the same set in another order: a retry
    assert len(await team.inbox(MARIE)) == 2
    assert len(await team.inbox(PAUL)) == 1


async def test_the_same_message_id_from_another_sender_is_a_new_message(team: Running) -> None:
    await team.submit(JEAN, message(JEAN, PAUL, message_id=MSGID), [PAUL])
    await team.submit(MARIE, message(MARIE, PAUL, message_id=MSGID), [PAUL])
    assert len(await team.inbox(PAUL)) == 2


async def test_another_message_reusing_a_message_id_is_stored(team: Running) -> None:
    await team.submit(JEAN, message(JEAN, MARIE, "Compte rendu", message_id=MSGID), [MARIE])
    reply = await team.submit(JEAN, message(JEAN, MARIE, "Ordonnance", message_id=MSGID), [MARIE])
    assert reply.code == 250
    subjects = [b"Subject: Ordonnance" in m for m in await team.inbox(MARIE)]
    assert subjects == [False, True]  # software reusing a Message-ID loses nothing


async def test_a_message_without_message_id_is_stored_each_time(team: Running) -> None:
    raw = message(JEAN, MARIE)  # the server adds a new Message-ID each time
    await team.submit(JEAN, raw, [MARIE])
    await team.submit(JEAN, raw, [MARIE])
    assert len(await team.inbox(MARIE)) == 2


async def test_a_retry_after_fifteen_minutes_is_a_new_message(team: Running) -> None:
    raw = message(JEAN, MARIE, message_id=MSGID)
    await team.submit(JEAN, raw, [MARIE])
    await team.store.write(  # sixteen minutes pass
        lambda tx: tx.conn.execute(text("UPDATE recent_submission SET at = at - 960"))
    )
    await team.submit(JEAN, raw, [MARIE])
    assert len(await team.inbox(MARIE)) == 2


async def test_a_retried_relay_is_queued_once(team: Running) -> None:
    remote = "x@autre-operateur.mssante.test"
    await team.trust("autre-operateur.mssante.test")
    raw = message(JEAN, remote, message_id=MSGID)
    await team.submit(JEAN, raw, [remote])
    await team.submit(JEAN, raw, [remote])
    assert len(await team.store.read(lambda c: list_entries(c))) == 1


async def test_a_refused_message_leaves_no_mark_for_its_retry(team: Running) -> None:
    await team.add_patient(INS, password=PASSWORD)
    raw = message(PATIENT, JEAN, "Bonjour docteur", message_id="<p1@patient.mssante.fr>")
    with pytest.raises(aiosmtplib.SMTPDataError) as info:  # no professional wrote yet
        await team.submit(PATIENT, raw, [JEAN])
    assert info.value.code == 550
    reply = await team.submit(
        JEAN, message(JEAN, PATIENT, message_id="<m1@pro.mssante.test>"), [PATIENT]
    )
    assert reply.code == 250
    assert (await team.submit(PATIENT, raw, [JEAN])).code == 250  # now allowed: stored
    assert len(await team.inbox(JEAN)) == 1


async def test_a_retried_patient_message_is_stored_once(team: Running) -> None:
    await team.add_patient(INS, password=PASSWORD)
    raw = message(JEAN, PATIENT, message_id="<m1@pro.mssante.test>")
    await team.submit(JEAN, raw, [PATIENT])
    await team.submit(JEAN, raw, [PATIENT])
    assert len(await team.inbox(PATIENT)) == 1


# --- the store's claim, on SQLite and PostgreSQL -------------------------------------------


async def test_a_digest_is_claimed_once_within_the_window(store: Store) -> None:
    def at(now: int, queue_id: str) -> Callable[[Tx], str | None]:
        return lambda tx: claim(tx, "k" * 64, queue_id, now, 900)

    assert await store.write(at(1000, "A")) is None
    assert await store.write(at(1899, "B")) == "A"  # within: the first one's id
    assert await store.write(at(1900, "C")) is None  # past the window: a new message
    assert await store.write(at(1901, "D")) == "C"
    assert await store.write(lambda tx: purge_recent(tx, 2801, 900)) == 1
    assert await store.write(at(2801, "E")) is None


async def test_two_processes_claiming_one_digest_at_once_store_it_once(
    db_url: str, key_file: Path
) -> None:
    first, second = Store.open(db_url, key_file), Store.open(db_url, key_file, migrate=False)
    first.start()
    second.start()
    try:
        results = await asyncio.gather(*(
            s.write(lambda tx, s=s: claim(tx, "d" * 64, repr(id(s)), 1000, 900))
            for s in (first, second, first, second)
        ))  # fmt: skip
    finally:
        await first.close()
        await second.close()
    assert results.count(None) == 1
    winner = [repr(id(s)) for s, r in zip((first, second) * 2, results, strict=True) if r is None]
    assert {r for r in results if r is not None} == set(winner)


def test_the_digest_knows_a_retry_by_its_bytes_up_to_the_final_line_end() -> None:
    from mss.delivery.retries import digest

    raw = message(JEAN, MARIE, message_id=MSGID)
    first = digest(MSGID, JEAN, [MARIE, PAUL], raw)
    assert first == digest(MSGID, JEAN.upper(), [PAUL, MARIE.upper()], raw + b"\r\n")
    assert first != digest(MSGID, JEAN, [MARIE, PAUL], raw.replace(b"Bonjour", b"Bonsoir"))
    assert digest(None, JEAN, [MARIE], raw) is None
    assert digest("  ", JEAN, [MARIE], raw) is None
