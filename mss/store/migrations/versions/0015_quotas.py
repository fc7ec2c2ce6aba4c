"""The accounts' quotas: what each mailbox holds, and an account's own limits

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06

`mailbox.message_count` and `mailbox.message_bytes`: kept by the transactions that
add (delivery, APPEND, COPY) and remove (EXPUNGE, MOVE) messages, so that an
account's usage is a sum over its few mailboxes, not over its million messages
(store/quotas.py). Initialised here from the messages already stored.

`account.quota_folders`, `quota_messages`, `quota_storage`: an account's limits apart
from the settings' (`mss pro quota`); NULL: the settings' `[limits]`, 0: no limit.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None
ACCOUNT_COLUMNS = ("quota_folders", "quota_messages", "quota_storage")


def upgrade() -> None:
    for name in ("message_count", "message_bytes"):
        op.add_column(
            "mailbox", sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")
        )
    for name in ACCOUNT_COLUMNS:
        op.add_column("account", sa.Column(name, sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE mailbox SET "
        "message_count = (SELECT count(*) FROM message WHERE message.mailbox_id = mailbox.id), "
        "message_bytes = (SELECT coalesce(sum(size), 0) FROM message "
        "WHERE message.mailbox_id = mailbox.id)"
    )


def downgrade() -> None:
    for name in ("message_bytes", "message_count"):
        op.drop_column("mailbox", name)  # SQLite ≥ 3.35 drops it in place
    for name in ACCOUNT_COLUMNS:
        op.drop_column("account", name)
