"""The patient space: its sessions; notify_log.status wide enough for "profile_closed"

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

The table is that of `mss.store.models` as of this revision, written out here so that
a later change to the models cannot change what this migration creates.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "space_session",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("account", sa.String(254), nullable=False),
        sa.Column("ins", sa.String(15), nullable=False),
        sa.Column("representative", sa.Boolean(), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("last_seen", sa.BigInteger(), nullable=False),
        sa.Column("expires", sa.BigInteger(), nullable=False),
        sa.Column("user_agent", sa.String(200), nullable=False),
        sa.Column("address", sa.String(45), nullable=False),
    )
    op.create_index("ix_space_session_account", "space_session", ["account"])
    # 0008 made it 12 characters: PostgreSQL refused the log line of a closed profile
    with op.batch_alter_table("notify_log") as table:
        table.alter_column("status", type_=sa.String(16), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("notify_log") as table:
        table.alter_column("status", type_=sa.String(12), existing_nullable=False)
    op.drop_table("space_session")
