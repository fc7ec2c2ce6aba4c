"""Blobs in an S3-compatible object store

Revision ID: 0016
Revises: 0014
Create Date: 2026-12-06

`blob.object_key`: the key of the object holding the body when `[blobs] store = "s3"`
(then `blob.data` is empty). `blob_object (object_key, state, touched_at)`: what the
collector (`mss blobs gc`) knows of each object, so that it never deletes one a
committed row names (`mss/store/blobs_s3.py` draws the protocol).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("blob", sa.Column("object_key", sa.String(200), nullable=True))
    op.create_index("ix_blob_object_key", "blob", ["object_key"])
    op.create_table(
        "blob_object",
        sa.Column("object_key", sa.String(200), primary_key=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("touched_at", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("blob_object")
    op.drop_index("ix_blob_object_key", "blob")
    op.drop_column("blob", "object_key")
