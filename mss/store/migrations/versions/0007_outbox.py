"""One outbox for every kind of after-commit work (relay, DMP deposit, MDN, notification)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

`relay_queue`, `dmp_deposit_outbox` and `notification_outbox` become rows of one
`outbox` table (kind, status, payload, attempts, due_at, lease); their rows are
carried over, then the old tables are dropped. An MDN still to send becomes an
`mdn` row of its own.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
RELAY_STATUS = {"queued": "pending", "sent": "done", "failed": "failed", "dropped": "dropped"}


def _create_outbox() -> sa.Table:
    table = op.create_table(
        "outbox",
        sa.Column("id", BigId, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("blob_id", BigId, nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.BigInteger(), nullable=False),
        sa.Column("expires", sa.BigInteger(), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("updated", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["blob_id"], ["blob.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_outbox_due", "outbox", ["status", "due_at"])
    op.create_index("ix_outbox_kind", "outbox", ["kind", "status"])
    op.create_index("ix_outbox_blob_id", "outbox", ["blob_id"])
    assert table is not None
    return table


def _epoch(bind: sa.Connection, column: str) -> str:
    """SQL for the Unix time of a naive timestamp column as mss wrote it: UTC on SQLite;
    on PostgreSQL, the session's time zone (an aware UTC value stored in a column
    without time zone is converted to it)."""
    if bind.dialect.name == "postgresql":
        zone = "current_setting('TimeZone')"
        return f"CAST(EXTRACT(EPOCH FROM ({column} AT TIME ZONE {zone})) AS BIGINT)"
    return f"CAST(strftime('%s', {column}) AS INTEGER)"


def _relay_rows(bind: sa.Connection) -> list[dict[str, Any]]:
    rows = bind.execute(sa.text("SELECT * FROM relay_queue")).mappings()
    fields = ("queue_id", "mail_from", "rcpt_to", "domain", "notify", "orcpt", "ret", "envid")
    return [
        {
            "kind": "relay",
            "status": RELAY_STATUS.get(r["status"], "failed"),
            "blob_id": r["blob_id"],
            "payload": json.dumps({f: r[f] for f in fields}),
            "attempts": r["attempts"],
            "due_at": r["next_attempt"],
            "expires": r["expires"],
            "created": r["created"],
            "updated": r["updated"],
            "last_error": r["last_error"],
        }
        for r in rows
    ]


def _deposit_rows(bind: sa.Connection) -> list[dict[str, Any]]:
    out = []
    query = (
        f"SELECT *, {_epoch(bind, 'created_at')} AS created_s, "
        f"{_epoch(bind, 'done_at')} AS done_s FROM dmp_deposit_outbox"
    )
    for r in bind.execute(sa.text(query)).mappings():
        created = int(r["created_s"])
        done = r["done_at"] is not None
        payload = json.dumps({"ins": r["ins"], "sender": r["sender"]})
        out.append({
            "kind": "dmp_deposit", "status": "done" if done else "pending",
            "blob_id": r["blob_id"], "payload": payload,
            "attempts": 1 if done else 0, "due_at": created, "expires": None,
            "created": created, "updated": int(r["done_s"] or created),
            "last_error": None, "result": r["result"],
        })  # fmt: skip
        if r["mdn_to"] and r["mdn_sent_at"] is None:
            mdn = {"to": r["mdn_to"], "ins": r["ins"], "error": r["mdn_error"]}
            out.append({
                "kind": "mdn", "status": "pending", "blob_id": r["blob_id"],
                "payload": json.dumps(mdn), "attempts": 0, "due_at": created,
                "expires": None, "created": created, "updated": created, "last_error": None,
                "result": None,
            })  # fmt: skip
    return out


def _notification_rows(bind: sa.Connection) -> list[dict[str, Any]]:
    query = f"SELECT *, {_epoch(bind, 'created_at')} AS created_s FROM notification_outbox"
    out = []
    for r in bind.execute(sa.text(query)).mappings():
        created = int(r["created_s"])
        payload = {"ins": r["ins"], "event": r["kind"], **json.loads(r["payload"] or "{}")}
        out.append({
            "kind": "notification", "status": "pending" if r["sent_at"] is None else "done",
            "blob_id": None, "payload": json.dumps(payload, ensure_ascii=False), "attempts": 0,
            "due_at": created, "expires": None, "created": created, "updated": created,
            "last_error": None, "result": None,
        })  # fmt: skip
    return out


def upgrade() -> None:
    bind = op.get_bind()
    outbox = _create_outbox()
    for rows in (_relay_rows(bind), _deposit_rows(bind), _notification_rows(bind)):
        if rows:
            op.bulk_insert(outbox, [{"result": None, **row} for row in rows])
    op.drop_table("relay_queue")
    op.drop_table("dmp_deposit_outbox")
    op.drop_table("notification_outbox")


def downgrade() -> None:
    """Back to the three tables of 0006, empty: pending work of the outbox is lost."""
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
    op.create_index("ix_relay_queue_due", "relay_queue", ["status", "next_attempt"])
    op.create_index("ix_relay_queue_blob_id", "relay_queue", ["blob_id"])
    op.create_index("ix_relay_queue_queue_id", "relay_queue", ["queue_id"])
    op.create_table(
        "notification_outbox",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("ins", sa.String(15), nullable=False, index=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "dmp_deposit_outbox",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("blob_id", BigId, sa.ForeignKey("blob.id"), nullable=False),
        sa.Column("ins", sa.String(15), nullable=False),
        sa.Column("sender", sa.String(254), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("done_at", sa.DateTime(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("mdn_to", sa.String(254), nullable=True),
        sa.Column("mdn_error", sa.String(300), nullable=True),
        sa.Column("mdn_sent_at", sa.DateTime(), nullable=True),
    )
    op.drop_table("outbox")
