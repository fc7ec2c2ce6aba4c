"""Indexes for a professional's search of a full DMP

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06

`dmp_trace (ins, actor, action)`: whether a professional already consulted this
DMP (their first access is told to the patient) was answered by reading every
trace of the DMP. `dmp_document (record_id, creation_time, id)`: the newest first,
read in order instead of sorted.

0006 creates the DMP's tables from the models of the day: on a new database they
already carry these indexes (hence `if_not_exists`).
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_dmp_trace_ins_actor_action", "dmp_trace", ["ins", "actor", "action"],
        if_not_exists=True,
    )  # fmt: skip
    op.create_index(
        "ix_dmp_document_record_newest", "dmp_document", ["record_id", "creation_time", "id"],
        if_not_exists=True,
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_dmp_document_record_newest", "dmp_document", if_exists=True)
    op.drop_index("ix_dmp_trace_ins_actor_action", "dmp_trace", if_exists=True)
