"""Schema changes are migrations: the models and the migrations must agree."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from mss.store.db import MIGRATIONS_DIR, Database
from mss.store.models import metadata


def _head() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def test_migrations_build_exactly_the_models(db_url: str) -> None:
    db = Database(db_url)
    try:
        db.migrate()
        assert db.current_revision() == _head()
        with db.write_engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
            assert set(inspect(conn).get_table_names()) >= set(metadata.tables)
    finally:
        db.close_sync()


def test_migrate_is_idempotent(db_url: str) -> None:
    db = Database(db_url)
    try:
        db.migrate()
        db.migrate()
        assert db.current_revision() == _head()
    finally:
        db.close_sync()


def test_every_migration_has_a_downgrade() -> None:
    for path in Path(MIGRATIONS_DIR / "versions").glob("*.py"):
        if path.name != "__init__.py":
            assert "def downgrade()" in path.read_text(), path


def test_upgrading_a_database_of_revision_0001_keeps_its_data(db_url: str) -> None:
    db = Database(db_url)
    try:
        db.migrate("0001")
        with db.write_engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO patient (id, ins, oid, birth_family, birth_given, birth_date, "
                    "sex, identity_status, profile_status, created_at, updated_at) VALUES (7, "
                    "'279035121518989', '1.2.250.1.213.1.4.8', 'PAT-TROIS', 'DOMINIQUE', "
                    "'1979-03-28', 'F', 'QUAL', 'active', '2026-01-01', '2026-01-01')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO conversation (id, patient_id, status, started_by, started_at, "
                    "last_activity) VALUES (3, 7, 'open', 'jean@pro.mssante.test', '2026-01-01', "
                    "'2026-01-01')"
                )
            )
        db.migrate()
        with db.read_engine.connect() as conn:
            row = conn.execute(text("SELECT id, patient_ins, status FROM conversation")).one()
        assert tuple(row) == (3, "279035121518989", "open")
        assert db.current_revision() == _head()
    finally:
        db.close_sync()


def test_upgrading_to_one_outbox_carries_every_pending_row_over(db_url: str) -> None:
    """0007: relay_queue, dmp_deposit_outbox and notification_outbox become outbox rows,
    their times kept (PostgreSQL: whatever the server's time zone)."""
    if db_url.startswith("postgresql"):
        admin = db_url.replace("postgresql+psycopg://", "postgresql://")
        name = admin.rpartition("/")[2]
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE \"{name}\" SET timezone TO 'Europe/Paris'")
    db = Database(db_url)
    created = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
    try:
        db.migrate("0006")
        with db.write_engine.begin() as conn:
            _old_rows(conn, created)
        db.migrate()
        with db.read_engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT kind, status, blob_id, payload, due_at, expires FROM outbox ORDER BY id"
                )
            ).all()
    finally:
        db.close_sync()
    epoch = int(created.timestamp())
    got = [(k, s, b, json.loads(p), due, exp) for k, s, b, p, due, exp in rows]
    assert got == [
        ("relay", "pending", 1, {"queue_id": "Q1", "mail_from": "a@pro.mssante.test",
         "rcpt_to": "b@autre.mssante.test", "domain": "autre.mssante.test", "notify": None,
         "orcpt": None, "ret": None, "envid": None}, 1700, 9999),
        ("dmp_deposit", "pending", 1, {"ins": "279035121518989", "sender": "a@pro.mssante.test"},
         epoch, None),
        ("dmp_deposit", "done", 1, {"ins": "279035121518989", "sender": "a@pro.mssante.test"},
         epoch, None),
        ("mdn", "pending", 1, {"to": "a@pro.mssante.test", "ins": "279035121518989",
         "error": "906^x"}, epoch, None),
        ("notification", "pending", None, {"ins": "279035121518989", "event": "new_document",
         "document": 7}, epoch, None),
    ]  # fmt: skip


def _old_rows(conn: Any, created: dt.datetime) -> None:
    """What 0006's tables held, written as mss wrote them (aware UTC datetimes)."""
    conn.execute(text("INSERT INTO blob (id, key_id, size, data) VALUES (1, 'k1', 1, :d)"),
                 {"d": b"x"})  # fmt: skip
    conn.execute(
        text(
            "INSERT INTO relay_queue (blob_id, queue_id, mail_from, rcpt_to, domain, status, "
            "attempts, next_attempt, expires, created, updated) VALUES (1, 'Q1', "
            "'a@pro.mssante.test', 'b@autre.mssante.test', 'autre.mssante.test', 'queued', 2, "
            "1700, 9999, 1600, 1650)"
        )
    )
    conn.execute(
        text("INSERT INTO dmp_deposit_outbox (blob_id, ins, sender, created_at, done_at, "
             "mdn_to, mdn_error) VALUES (1, '279035121518989', 'a@pro.mssante.test', :c, NULL, "
             "NULL, NULL), (1, '279035121518989', 'a@pro.mssante.test', :c, :c, "
             "'a@pro.mssante.test', '906^x')"),
        {"c": created},
    )  # fmt: skip
    conn.execute(
        text("INSERT INTO notification_outbox (kind, ins, payload, created_at) VALUES "
             "('new_document', '279035121518989', '{\"document\": 7}', :c)"),
        {"c": created},
    )  # fmt: skip


def test_0012_a_push_endpoint_is_unique_per_patient_and_notices_keep_their_document(
    db_url: str,
) -> None:
    """0012: one browser may be subscribed for two patients (not twice for one); the
    subscriptions of 0011 are kept; a notice's log line may name its document."""
    insert = text(
        "INSERT INTO push_subscription (id, ins, endpoint, p256dh, auth, created)"
        " VALUES (:id, :ins, 'https://push.example/one-browser', 'k', 'a', 1)"
    )
    db = Database(db_url)
    try:
        db.migrate("0011")
        with db.write_engine.begin() as conn:
            conn.execute(insert, {"id": 1, "ins": "279035121518989"})
        db.migrate()
        with db.write_engine.begin() as conn:
            conn.execute(insert, {"id": 2, "ins": "115037505612391"})
            conn.execute(
                text(
                    "INSERT INTO notify_log (ins, event_id, notice_id, event, category,"
                    " channel, destination, status, detail, created, at, document_id) VALUES"
                    " ('1', 1, 'n1', 'new_document', 'documents', '', '', 'sent', '', 1, 1, 7)"
                )
            )
        with pytest.raises(IntegrityError), db.write_engine.begin() as conn:
            conn.execute(insert, {"id": 3, "ins": "279035121518989"})
        with db.read_engine.connect() as conn:
            rows = conn.execute(text("SELECT id, ins FROM push_subscription ORDER BY id")).all()
            logged = conn.execute(text("SELECT document_id FROM notify_log")).scalar_one()
        assert [tuple(r) for r in rows] == [(1, "279035121518989"), (2, "115037505612391")]
        assert logged == 7
        _downgrade(db, "0011")  # one subscription of an endpoint kept: it is unique again
        with db.read_engine.connect() as conn:
            kept = conn.execute(text("SELECT id FROM push_subscription")).scalars().all()
        assert kept == [1]
        db.migrate()
        assert db.current_revision() == _head()
    finally:
        db.close_sync()


def test_0014_subscriptions_leave_the_mailbox_rows_and_are_kept(db_url: str) -> None:
    """0014: the mailboxes subscribed so far stay subscribed (now rows of `subscription`),
    those that were not stay not; a downgrade puts the flag back."""
    db = Database(db_url)
    try:
        db.migrate("0013")
        with db.write_engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO account (id, address, kind, disabled, created_at) VALUES"
                    " (5, 'marie@pro.mssante.test', 'professional', false, '2026-01-01')"
                )
            )
            for box_id, name, subscribed in ((1, "INBOX", True), (2, "Vieux", False)):
                conn.execute(
                    text(
                        "INSERT INTO mailbox (id, account_id, name, uidvalidity, uidnext,"
                        " highestmodseq, first_recent_uid, subscribed, created_at) VALUES"
                        " (:id, 5, :name, 1, 1, 1, 1, :subscribed, '2026-01-01')"
                    ),
                    {"id": box_id, "name": name, "subscribed": subscribed},
                )
        db.migrate()
        with db.read_engine.connect() as conn:
            rows = conn.execute(text("SELECT account_id, name FROM subscription")).all()
            columns = {c["name"] for c in inspect(conn).get_columns("mailbox")}
        assert [tuple(r) for r in rows] == [(5, "INBOX")]
        assert "subscribed" not in columns
        _downgrade(db, "0013")
        with db.read_engine.connect() as conn:
            flags = conn.execute(text("SELECT name, subscribed FROM mailbox ORDER BY id")).all()
        assert [(n, bool(s)) for n, s in flags] == [("INBOX", True), ("Vieux", False)]
        db.migrate()
    finally:
        db.close_sync()


def _downgrade(db: Database, target: str) -> None:
    from alembic import command

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with db.write_engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, target)


_MAILBOX = (
    "INSERT INTO mailbox (id, account_id, name, uidvalidity, uidnext, highestmodseq,"
    " first_recent_uid, created_at) VALUES (:id, 5, :name, 1, 3, 1, 1, '2026-01-01')"
)
_MESSAGE = (
    "INSERT INTO message (mailbox_id, uid, modseq, flags, internal_date, size, blob_id,"
    " envelope, body_structure) VALUES (1, :uid, 1, 0, 0, :size, 1, '[]', '[]')"
)
_BEFORE_0015 = [
    ("INSERT INTO account (id, address, kind, disabled, operator_disabled, created_at) VALUES"
     " (5, 'marie@pro.mssante.test', 'professional', false, false, '2026-01-01')", {}),
    (_MAILBOX, {"id": 1, "name": "INBOX"}),
    (_MAILBOX, {"id": 2, "name": "Vide"}),
    ("INSERT INTO blob (id, key_id, size, data) VALUES (1, 'k', 1, 'x')", {}),
    (_MESSAGE, {"uid": 1, "size": 1200}),
    (_MESSAGE, {"uid": 2, "size": 34}),
]  # fmt: skip


def test_0015_mailbox_usage_starts_from_the_messages_already_stored(db_url: str) -> None:
    """0015: each mailbox's counters (the quotas' usage) start as what it holds."""
    db = Database(db_url)
    try:
        db.migrate("0014")
        with db.write_engine.begin() as conn:
            for statement, params in _BEFORE_0015:
                conn.execute(text(statement), params)
        db.migrate()
        with db.read_engine.connect() as conn:
            rows = conn.execute(
                text("SELECT name, message_count, message_bytes FROM mailbox ORDER BY id")
            ).all()
            own = conn.execute(text("SELECT quota_storage FROM account")).scalar_one()
        assert [tuple(r) for r in rows] == [("INBOX", 2, 1234), ("Vide", 0, 0)]
        assert own is None  # the settings' limits
        _downgrade(db, "0014")
        db.migrate()
    finally:
        db.close_sync()
