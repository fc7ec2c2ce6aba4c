"""Alembic environment: runs on the connection that `Database.migrate` passes in."""

from __future__ import annotations

from alembic import context

from mss.store.models import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - mss always passes its connection
    raise RuntimeError("mss migrations run through `mss init` / `mss serve`, not alembic's CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
