"""The author of a DMP document named by an address when it has no national id

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

A mail deposited by a mailbox without a national id (an applicative mailbox, a
professional of another operator not yet in the annuaire) names its author by the
sender's address: 20 characters made PostgreSQL refuse the deposit (SQLite kept it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dmp_document") as table:
        table.alter_column(
            "author_national_id", type_=sa.String(254), existing_type=sa.String(20),
            existing_nullable=False,
        )  # fmt: skip


def downgrade() -> None:
    with op.batch_alter_table("dmp_document") as table:
        table.alter_column(
            "author_national_id", type_=sa.String(20), existing_type=sa.String(254),
            existing_nullable=False,
        )  # fmt: skip
