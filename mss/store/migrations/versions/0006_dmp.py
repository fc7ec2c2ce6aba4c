"""DMP: records, documents (with versions), special persons, authorisations, traces, outboxes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22

The tables are those of `mss.store.models` as of this revision; a later change to
them needs its own migration.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mss.store import models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = ("dmp_record", "dmp_document", "dmp_person", "dmp_authorization", "dmp_trace")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _outboxes() -> list[sa.Table]:
    """The two outboxes of this revision (0007 replaced them by one `outbox` table)."""
    frozen = sa.MetaData()
    sa.Table("blob", frozen, sa.Column("id", BigId, primary_key=True))
    notifications = sa.Table(
        "notification_outbox", frozen,
        sa.Column("id", BigId, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("ins", sa.String(15), nullable=False, index=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
    )  # fmt: skip
    deposits = sa.Table(
        "dmp_deposit_outbox", frozen,
        sa.Column("id", BigId, primary_key=True),
        sa.Column("blob_id", BigId, sa.ForeignKey("blob.id"), nullable=False),
        sa.Column("ins", sa.String(15), nullable=False),
        sa.Column("sender", sa.String(254), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("done_at", sa.DateTime(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("mdn_to", sa.String(254), nullable=True),
        sa.Column("mdn_error", sa.String(300), nullable=True),
        sa.Column("mdn_sent_at", sa.DateTime(), nullable=True),
    )  # fmt: skip
    return [notifications, deposits]


def upgrade() -> None:
    bind = op.get_bind()
    for name in TABLES:
        models.metadata.tables[name].create(bind)
    for table in _outboxes():
        table.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(_outboxes()):
        table.drop(bind)
    for name in reversed(TABLES):
        models.metadata.tables[name].drop(bind)
