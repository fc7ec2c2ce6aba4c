"""Recent messages, to store a retried one once

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06

`recent_submission (key, queue_id, at)`: the digest of a message's Message-ID, bytes,
envelope sender and recipients, written in the transaction that stores it. A client
that lost the 250 and sends the same message again within the window is answered
250 with the first queue id, and nothing is stored twice (delivery/retries.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recent_submission",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("queue_id", sa.String(32), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_recent_submission_at", "recent_submission", ["at"])


def downgrade() -> None:
    op.drop_index("ix_recent_submission_at", "recent_submission")
    op.drop_table("recent_submission")
