"""The store, on SQLite and PostgreSQL: group commit, UIDs, encryption, accounts."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
import warnings
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from mss.core.identity import build_patient
from mss.core.mime import Envelope, Part
from mss.errors import DuplicateError, Rejection, StoreError
from mss.store.accounts import add_account, add_patients, get_account, set_profile_status
from mss.store.api import Store
from mss.store.blobs import load_cipher, rotate_key_file
from mss.store.mailboxes import (
    DEFAULT_MAILBOXES,
    INBOX,
    MailboxChanged,
    Target,
    count_messages,
    list_messages,
    mailbox_id,
)
from mss.store.models import AccountKind, blob_table, mailbox_table, message_table
from mss.store.sql import Tx

PATIENT_DOMAIN = "patient.mssante.fr"


def message(n: int, body: str = "Compte rendu confidentiel") -> bytes:
    return (
        f"From: Dr Jean Dupont <jean.dupont@pro.mssante.test>\r\n"
        f"To: 279035121518989@patient.mssante.fr\r\n"
        f"Subject: Message {n}\r\n"
        f"Date: Sun, 22 Nov 2026 10:00:00 +0100\r\n"
        f"Message-ID: <m{n}@pro.mssante.test>\r\n\r\n"
        f"{body} {n}\r\n"
    ).encode()


async def new_inbox(store: Store, address: str) -> int:
    def job(tx: Tx) -> int:
        account = add_account(tx, address=address, kind=AccountKind.PROFESSIONAL)
        return mailbox_id(tx.conn, account, INBOX)

    return await store.write(job)


async def test_deliver_assigns_increasing_uids_and_modseqs(store: Store) -> None:
    box = await new_inbox(store, "jean.dupont@pro.mssante.test")
    stored = [await store.deliver(message(i), [Target(box)]) for i in range(3)]
    assert [s.copies[0].uid for s in stored] == [1, 2, 3]
    assert [s.copies[0].modseq for s in stored] == [2, 3, 4]  # HIGHESTMODSEQ starts at 1
    state = await store.read(
        lambda c: c.execute(
            select(mailbox_table.c.uidnext, mailbox_table.c.highestmodseq).where(
                mailbox_table.c.id == box
            )
        ).one()
    )
    assert tuple(state) == (4, 4)


async def test_concurrent_deliveries_share_commits_and_get_dense_uids(store: Store) -> None:
    boxes = [await new_inbox(store, f"pro{i}@pro.mssante.test") for i in range(5)]
    batches_before = store.db.batches
    results = await asyncio.gather(
        *(store.deliver(message(i), [Target(boxes[i % 5])]) for i in range(200))
    )
    assert store.db.batches - batches_before < 200  # group commit happened
    for box in boxes:
        records = await store.read(lambda c, b=box: list_messages(c, b))
        assert [r.uid for r in records] == list(range(1, 41))
    assert sorted(r.copies[0].uid for r in results if r.copies[0].mailbox_id == boxes[0]) == list(
        range(1, 41)
    )


async def test_one_message_to_several_mailboxes_shares_one_blob(store: Store) -> None:
    a = await new_inbox(store, "a@pro.mssante.test")
    b = await new_inbox(store, "b@pro.mssante.test")
    stored = await store.deliver(message(1), [Target(a), Target(b), Target(b, flags=1)])
    assert [(s.mailbox_id, s.uid) for s in stored.copies] == [(a, 1), (b, 1), (b, 2)]
    blobs = await store.read(
        lambda c: c.execute(select(func.count()).select_from(blob_table)).scalar()
    )
    assert blobs == 1
    assert await store.message_bytes(b, 2) == message(1)


async def test_envelope_and_body_structure_are_stored_at_delivery(store: Store) -> None:
    box = await new_inbox(store, "jean@pro.mssante.test")
    await store.deliver(message(7), [Target(box)])
    row = await store.read(
        lambda c: c.execute(
            select(
                message_table.c.envelope,
                message_table.c.body_structure,
                message_table.c.message_id,
                message_table.c.sent_date,
                message_table.c.size,
            )
        ).one()
    )
    envelope = Envelope.from_json(json.loads(row.envelope))
    assert envelope.subject == "Message 7"
    assert Part.from_json(json.loads(row.body_structure)).subtype == "plain"
    assert row.message_id == "<m7@pro.mssante.test>"
    assert row.sent_date == 1795338000  # 2026-11-22 09:00:00 UTC
    assert row.size == len(message(7))


async def test_blobs_are_encrypted_at_rest(store: Store, key_file: Path) -> None:
    box = await new_inbox(store, "jean@pro.mssante.test")
    secret = "DIAGNOSTIC-TRES-CONFIDENTIEL"
    await store.deliver(message(1, secret), [Target(box)])
    stored = await store.read(
        lambda c: c.execute(select(blob_table.c.key_id, blob_table.c.data)).one()
    )
    assert stored.key_id == "k1"
    assert secret.encode() not in bytes(stored.data)
    assert secret.encode() in await store.message_bytes(box, 1)


async def test_tampered_blob_fails_authentication(store: Store) -> None:
    box = await new_inbox(store, "jean@pro.mssante.test")
    await store.deliver(message(1), [Target(box)])

    def tamper(tx: Tx) -> None:
        data = bytearray(tx.conn.execute(select(blob_table.c.data)).scalar_one())
        data[20] ^= 0xFF
        tx.conn.execute(update(blob_table).values(data=bytes(data)))

    await store.write(tamper)
    with pytest.raises(StoreError, match="failed authentication"):
        await store.message_bytes(box, 1)


async def test_key_rotation_keeps_old_blobs_readable_and_reencrypts_lazily(
    db_url: str, key_file: Path
) -> None:
    first = Store.open(db_url, key_file)
    first.start()
    box = await new_inbox(first, "jean@pro.mssante.test")
    await first.deliver(message(1), [Target(box)])
    await first.close()

    assert rotate_key_file(key_file) == "k2"
    second = Store.open(db_url, key_file)
    second.start()
    try:
        await second.deliver(message(2), [Target(box)])
        keys = await second.read(
            lambda c: sorted(r.key_id for r in c.execute(select(blob_table.c.key_id)))
        )
        assert keys == ["k1", "k2"]
        assert await second.message_bytes(box, 1) == message(1)
        assert await second.reencrypt_some() == 1
        keys = await second.read(
            lambda c: sorted(r.key_id for r in c.execute(select(blob_table.c.key_id)))
        )
        assert keys == ["k2", "k2"]
        assert await second.message_bytes(box, 1) == message(1)
        assert await second.reencrypt_some() == 0
    finally:
        await second.close()
    assert load_cipher(key_file).key_ids == ["k1", "k2"]


async def test_a_failing_write_does_not_fail_the_others_in_its_batch(store: Store) -> None:
    box = await new_inbox(store, "jean@pro.mssante.test")

    def bad(tx: Tx) -> None:
        tx.conn.execute(text("SELECT * FROM no_such_table"))

    outcomes = await asyncio.gather(
        *(store.deliver(message(i), [Target(box)]) for i in range(20)),
        store.write(bad),
        *(store.deliver(message(i), [Target(box)]) for i in range(20, 40)),
        return_exceptions=True,
    )
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], StoreError)
    assert await store.read(lambda c: count_messages(c, box)) == 40


async def test_delivery_to_a_missing_mailbox_fails_alone(store: Store) -> None:
    box = await new_inbox(store, "jean@pro.mssante.test")
    outcomes = await asyncio.gather(
        store.deliver(message(1), [Target(box)]),
        store.deliver(message(2), [Target(999_999)]),
        store.deliver(message(3), [Target(box)]),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], Exception) and "does not exist" in str(outcomes[1])
    assert await store.read(lambda c: count_messages(c, box)) == 2


async def test_committed_deliveries_publish_mailbox_events(store: Store) -> None:
    box = await new_inbox(store, "jean@pro.mssante.test")
    seen: list[object] = []
    store.db.subscribe(seen.extend)
    await store.deliver(message(1), [Target(box)])
    await asyncio.sleep(0)
    assert MailboxChanged(box, 2, 2) in seen


async def test_also_runs_in_the_same_transaction(store: Store) -> None:
    box = await new_inbox(store, "jean@pro.mssante.test")

    def also(tx: Tx, stored: object) -> None:
        raise RuntimeError("policy says no")

    with pytest.raises(RuntimeError):
        await store.deliver(message(1), [Target(box)], also=also)
    assert await store.read(lambda c: count_messages(c, box)) == 0  # nothing half-done


async def test_accounts_get_special_use_mailboxes_and_unique_addresses(store: Store) -> None:
    await new_inbox(store, "jean@pro.mssante.test")
    names = await store.read(
        lambda c: sorted(
            (r.name, r.special_use)
            for r in c.execute(select(mailbox_table.c.name, mailbox_table.c.special_use))
        )
    )
    assert names == sorted(DEFAULT_MAILBOXES)
    with pytest.raises(DuplicateError, match="already exists"):
        await new_inbox(store, "jean@pro.mssante.test")


PATIENT = {
    "ins": "279035121518989",
    "family": "PAT-TROIS",
    "given": "DOMINIQUE",
    "birth_date": "1979-03-28",
    "sex": "F",
}


async def test_patient_mailbox_follows_the_profile_status(store: Store) -> None:
    await store.write(lambda tx: add_patients(tx, [build_patient(PATIENT)], PATIENT_DOMAIN))
    address = f"{PATIENT['ins']}@{PATIENT_DOMAIN}"
    account = await store.read(lambda c: get_account(c, address))
    assert account is not None and account.kind == "patient" and not account.disabled
    await store.write(lambda tx: set_profile_status(tx, PATIENT["ins"], "closed", PATIENT_DOMAIN))
    account = await store.read(lambda c: get_account(c, address))
    assert account is not None and account.disabled
    await store.write(lambda tx: set_profile_status(tx, PATIENT["ins"], "active", PATIENT_DOMAIN))
    account = await store.read(lambda c: get_account(c, address))
    assert account is not None and not account.disabled


async def test_patient_who_opposed_has_no_mailbox(store: Store) -> None:
    opposed = build_patient({**PATIENT, "status": "opposed"})
    await store.write(lambda tx: add_patients(tx, [opposed], PATIENT_DOMAIN))
    assert await store.read(lambda c: get_account(c, f"{PATIENT['ins']}@{PATIENT_DOMAIN}")) is None


async def test_duplicate_patient_import_changes_nothing(store: Store) -> None:
    other = build_patient({**PATIENT, "ins": "188102B17295165", "family": "CORSE", "sex": "M"})
    await store.write(lambda tx: add_patients(tx, [build_patient(PATIENT)], PATIENT_DOMAIN))
    with pytest.raises(DuplicateError):
        await store.write(
            lambda tx: add_patients(tx, [other, build_patient(PATIENT)], PATIENT_DOMAIN)
        )
    assert await store.read(lambda c: get_account(c, f"188102B17295165@{PATIENT_DOMAIN}")) is None


async def test_a_refused_delivery_leaves_the_rest_of_its_group_commit_alone(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`decide` refuses one message of a group commit (the conversation rules do, for a
    patient writing outside a conversation): it alone gets the error, the others
    commit in the same batch (no batch re-run one write at a time), their events out."""
    box = await new_inbox(store, "jean@pro.mssante.test")
    alone: list[object] = []
    real = store.db._run_alone
    monkeypatch.setattr(store.db, "_run_alone", lambda c, j: (alone.append(j), real(c, j))[1])
    seen: list[object] = []
    store.db.subscribe(seen.extend)

    def refuse(tx: Tx) -> None:
        raise Rejection(550, "5.7.1", "refusé (refused)")

    results = await asyncio.gather(
        *(
            store.deliver(message(i), [Target(box)], decide=refuse if i == 5 else None)
            for i in range(20)
        ),
        return_exceptions=True,
    )
    assert isinstance(results[5], Rejection)
    assert all(not isinstance(r, BaseException) for i, r in enumerate(results) if i != 5)
    assert alone == []
    assert await store.read(lambda c: count_messages(c, box)) == 19
    await asyncio.sleep(0)
    assert max(e.uidnext for e in seen if isinstance(e, MailboxChanged)) == 20


def test_sqlite_dates_bind_as_the_texts_stored_before_without_a_deprecation() -> None:
    """Python 3.12 deprecated the sqlite3 module's default date adapters (a warning at
    each bind, an error under these tests' filters: most of the suite's 145 failures and
    errors on Python 3.13.0 before the store registered its own); the texts stay those
    of the rows already stored. On 3.11 this passes either way: the suite on 3.12 or
    3.13 is what shows the difference."""
    import mss.store.engines  # noqa: F401  (registers the adapters)

    when = dt.datetime(2026, 12, 7, 16, 0, 0, 250, tzinfo=dt.UTC)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        conn = sqlite3.connect(":memory:")
        try:
            row = conn.execute("SELECT ?, ?, ?", (when, when.replace(microsecond=0),
                                                  when.date())).fetchone()  # fmt: skip
        finally:
            conn.close()
    assert row == ("2026-12-07 16:00:00.000250+00:00", "2026-12-07 16:00:00+00:00", "2026-12-07")


def test_sorts_spilled_to_disk_leave_no_connection_open_behind(tmp_path: Path) -> None:
    """The annuaire import turns SQLite's sorts to files mid-way (`spill_sorts_to_disk`).
    Connections in use then (a reader of the live directory) get it when next taken;
    none may end outside the pool that closes them: dropping the pool for a new one left
    them open for good (Python 3.13 reported it as an unclosed database)."""
    from mss.store.db import Database

    db = Database(f"sqlite:///{tmp_path / 'spill.db'}")
    db.migrate()
    held = db.read_engine.connect()
    raw = held.connection.dbapi_connection
    assert raw is not None
    db.spill_sorts_to_disk()
    held.close()  # back to its pool, which must still be the engine's
    temp_store = "PRAGMA temp_store"
    assert db.read_sync(lambda c: c.exec_driver_sql(temp_store).scalar()) == 1  # FILE
    assert db.write_sync(lambda tx: tx.conn.exec_driver_sql(temp_store).scalar()) == 1
    db.close_sync()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        raw.execute("SELECT 1")
