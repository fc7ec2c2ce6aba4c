"""IMAP subscriptions apart from the mailboxes

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06

`subscription (account_id, name)`: the names an IMAP user subscribed to (RFC 3501
§6.3.6). A flag on the mailbox could not say that a deleted mailbox is still
subscribed (LIST-EXTENDED shows it `\\NonExistent`), nor keep a subscription to a name
that does not exist yet. The mailboxes subscribed so far keep their subscription; the
flag goes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscription",
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("account.id"), primary_key=True),
        sa.Column("name", sa.String(500), primary_key=True),
    )
    op.execute(
        "INSERT INTO subscription (account_id, name) "
        "SELECT account_id, name FROM mailbox WHERE subscribed"
    )
    op.drop_column("mailbox", "subscribed")  # SQLite ≥ 3.35 drops it in place


def downgrade() -> None:
    op.add_column(
        "mailbox",
        sa.Column("subscribed", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.execute(
        "UPDATE mailbox SET subscribed = EXISTS (SELECT 1 FROM subscription s "
        "WHERE s.account_id = mailbox.account_id AND s.name = mailbox.name)"
    )
    op.drop_table("subscription")
