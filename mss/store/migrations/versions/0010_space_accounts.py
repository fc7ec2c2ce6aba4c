"""The patient space: one-time codes, TOTP secrets, known devices, login throttling,
legal representatives

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

The tables are those of `mss.store.models` as of this revision, written out here so that
a later change to the models cannot change what this migration creates.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "space_code",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("ins", sa.String(15), nullable=False),
        sa.Column("purpose", sa.String(12), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("expires", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("used", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_space_code_ins_purpose", "space_code", ["ins", "purpose"])
    op.create_table(
        "space_totp",
        sa.Column("ins", sa.String(15), primary_key=True),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("confirmed", sa.Boolean(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "space_device",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("ins", sa.String(15), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("last_seen", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_space_device_ins", "space_device", ["ins"])
    op.create_table(
        "space_throttle",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("since", sa.BigInteger(), nullable=False),
        sa.Column("blocked_until", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "space_representation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("representative_ins", sa.String(15), nullable=False),
        sa.Column("ins", sa.String(15), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("ended", sa.BigInteger(), nullable=True),
    )
    op.create_index(
        "ix_space_representation_pair", "space_representation", ["representative_ins", "ins"]
    )
    op.create_index("ix_space_representation_ins", "space_representation", ["ins"])


def downgrade() -> None:
    for table in ("space_representation", "space_throttle", "space_device", "space_totp",
                  "space_code"):  # fmt: skip
        op.drop_table(table)
