"""Notifications: preferences, push subscriptions, failing contacts, the log, APP webhooks

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

The tables are those of `mss.store.models` as of this revision, written out here so
that a later change to the models cannot change what this migration creates.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "notify_preference",
        sa.Column("ins", sa.String(15), primary_key=True),
        sa.Column("category", sa.String(16), primary_key=True),
        sa.Column("channel", sa.String(8), primary_key=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "push_subscription",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("ins", sa.String(15), nullable=False),
        sa.Column("endpoint", sa.String(1000), nullable=False, unique=True),
        sa.Column("p256dh", sa.String(200), nullable=False),
        sa.Column("auth", sa.String(100), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_push_subscription_ins", "push_subscription", ["ins"])
    op.create_table(
        "contact_status",
        sa.Column("destination", sa.String(254), primary_key=True),
        sa.Column("failing", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("updated", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "notify_log",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("ins", sa.String(15), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("notice_id", sa.String(64), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("destination", sa.String(254), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False, server_default=""),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_notify_log_ins_at", "notify_log", ["ins", "at"])
    op.create_index("ix_notify_log_active", "notify_log", ["ins", "status", "at"])
    op.create_index("ix_notify_log_event_id", "notify_log", ["event_id"])
    op.create_index("ix_notify_log_notice_id", "notify_log", ["notice_id"])
    op.create_table(
        "mailbox_webhook",
        sa.Column("address", sa.String(254), primary_key=True),
        sa.Column("url", sa.String(1000), nullable=False),
        sa.Column("secrets", sa.Text(), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    for name in ("mailbox_webhook", "notify_log", "contact_status", "push_subscription",
                 "notify_preference"):  # fmt: skip
        op.drop_table(name)
