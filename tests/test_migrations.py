"""Schema changes are migrations: the models and the migrations must agree."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

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
