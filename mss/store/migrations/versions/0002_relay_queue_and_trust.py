"""relay queue, trusted domains, X-MSS headers, conversations keyed by INS

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "trusted_domain",
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("domain"),
    )
    op.create_table(
        "relay_queue",
        sa.Column("id", BigId, nullable=False),
        sa.Column("blob_id", BigId, nullable=False),
        sa.Column("queue_id", sa.String(length=32), nullable=False),
        sa.Column("mail_from", sa.String(length=254), nullable=False),
        sa.Column("rcpt_to", sa.String(length=254), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("notify", sa.String(length=40), nullable=True),
        sa.Column("orcpt", sa.String(length=600), nullable=True),
        sa.Column("ret", sa.String(length=4), nullable=True),
        sa.Column("envid", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt", sa.BigInteger(), nullable=False),
        sa.Column("expires", sa.BigInteger(), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("updated", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["blob_id"], ["blob.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("relay_queue", schema=None) as batch_op:
        batch_op.create_index("ix_relay_queue_due", ["status", "next_attempt"], unique=False)
        batch_op.create_index(batch_op.f("ix_relay_queue_blob_id"), ["blob_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_relay_queue_queue_id"), ["queue_id"], unique=False)
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mss_headers", sa.Text(), nullable=True))
    # Conversations name the patient by INS: the patient may live at another operator.
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("patient_ins", sa.String(length=15), nullable=True))
    op.execute(
        "UPDATE conversation SET patient_ins = "
        "(SELECT ins FROM patient WHERE patient.id = conversation.patient_id)"
    )
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.alter_column("patient_ins", existing_type=sa.String(length=15), nullable=False)
        batch_op.drop_index("ix_conversation_patient_id")
        fk = _conversation_patient_fk()
        if fk is not None:  # SQLite's is unnamed: the batch copy drops it with the column
            batch_op.drop_constraint(fk, type_="foreignkey")
        batch_op.drop_column("patient_id")
        batch_op.create_index(
            batch_op.f("ix_conversation_patient_ins"), ["patient_ins"], unique=False
        )


def _conversation_patient_fk() -> str | None:
    """The name of conversation.patient_id's foreign key, if the database named it."""
    inspector = sa.inspect(op.get_bind())
    for fk in inspector.get_foreign_keys("conversation"):
        if fk["constrained_columns"] == ["patient_id"] and fk.get("name"):
            return str(fk["name"])
    return None


def downgrade() -> None:
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("patient_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE conversation SET patient_id = "
        "(SELECT id FROM patient WHERE patient.ins = conversation.patient_ins)"
    )
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_patient_ins"))
        batch_op.drop_column("patient_ins")
        batch_op.create_foreign_key(None, "patient", ["patient_id"], ["id"])
        batch_op.create_index("ix_conversation_patient_id", ["patient_id"], unique=False)
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_column("mss_headers")
    with op.batch_alter_table("relay_queue", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_relay_queue_queue_id"))
        batch_op.drop_index(batch_op.f("ix_relay_queue_blob_id"))
        batch_op.drop_index("ix_relay_queue_due")
    op.drop_table("relay_queue")
    op.drop_table("trusted_domain")
