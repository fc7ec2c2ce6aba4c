"""DMP: records, documents (with versions), special persons, authorisations, traces, outboxes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22

The tables are those of `mss.store.models` as of this revision; a later change to
them needs its own migration.
"""

from __future__ import annotations

from alembic import op

from mss.store import models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = (
    "dmp_record", "dmp_document", "dmp_person", "dmp_authorization", "dmp_trace",
    "notification_outbox", "dmp_deposit_outbox",
)  # fmt: skip


def upgrade() -> None:
    bind = op.get_bind()
    for name in TABLES:
        models.metadata.tables[name].create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for name in reversed(TABLES):
        models.metadata.tables[name].drop(bind)
