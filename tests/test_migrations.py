"""Schema changes are migrations: the models and the migrations must agree."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

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
