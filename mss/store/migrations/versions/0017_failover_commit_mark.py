"""The writers' commit marks, for a failover

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06

`commit_mark (writer, batch)`: each writer process writes the number of its group
commit in the same transaction. When a PostgreSQL primary dies during a COMMIT,
the writer reads the mark on the new primary: the batch committed (its messages
are acknowledged) or it did not (it is run again), never a guess.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "commit_mark",
        sa.Column("writer", sa.String(200), primary_key=True),
        sa.Column("batch", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("commit_mark")
