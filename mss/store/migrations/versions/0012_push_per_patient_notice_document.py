"""A browser's push subscription per patient; the document a notice is about

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

`push_subscription.endpoint` was unique: one browser subscribed in two spaces (a
parent's own and, as legal representative, their child's) kept only the last, and
subscribing deleted another patient's subscription. It is unique per patient now,
on (ins, endpoint).

`notify_log.document_id`: the document a `new_document` notice is about (from the
event's payload), so that the history leaves out the notices of a document the viewer
may not see (hidden from legal representatives). The outbox row that carried it is
purged after a week and the log's detail is the sending's: neither keeps it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# SQLite's unique constraint of 0008 has no name: batch mode names it by this convention
CONVENTION = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
PER_PATIENT = "uq_push_subscription_ins_endpoint"


def _unique_on(columns: list[str]) -> str:
    """The name of push_subscription's unique constraint on `columns` (SQLite: unnamed,
    named by `CONVENTION`; PostgreSQL: push_subscription_endpoint_key)."""
    for found in sa.inspect(op.get_bind()).get_unique_constraints("push_subscription"):
        if found["column_names"] == columns:
            return found["name"] or f"uq_push_subscription_{columns[0]}"
    raise LookupError(f"no unique constraint on push_subscription {columns}")


def upgrade() -> None:
    old = _unique_on(["endpoint"])
    with op.batch_alter_table("push_subscription", naming_convention=CONVENTION) as table:
        table.drop_constraint(old, type_="unique")
        table.create_unique_constraint(PER_PATIENT, ["ins", "endpoint"])
    with op.batch_alter_table("notify_log") as table:
        table.add_column(sa.Column("document_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notify_log") as table:
        table.drop_column("document_id")
    op.execute(
        "DELETE FROM push_subscription WHERE id NOT IN"
        " (SELECT MIN(id) FROM push_subscription GROUP BY endpoint)"
    )
    with op.batch_alter_table("push_subscription") as table:
        table.drop_constraint(PER_PATIENT, type_="unique")
        table.create_unique_constraint("push_subscription_endpoint_key", ["endpoint"])
