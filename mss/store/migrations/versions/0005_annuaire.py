"""Annuaire: the national directory's mailboxes, activities and professionals, two sets each

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22

The tables are those of `mss.store.annuaire` as of this revision; a later
change to them needs its own migration.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mss.store import annuaire

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _tables() -> list[sa.Table]:
    metadata = sa.MetaData()
    annuaire.define(metadata)
    return list(metadata.sorted_tables)


def upgrade() -> None:
    bind = op.get_bind()
    for table in _tables():
        table.create(bind)
    state = sa.table("annuaire_state", sa.column("kind"), sa.column("live"))
    op.bulk_insert(state, [{"kind": kind, "live": "a"} for kind in annuaire.KINDS])


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(_tables()):
        table.drop(bind)
