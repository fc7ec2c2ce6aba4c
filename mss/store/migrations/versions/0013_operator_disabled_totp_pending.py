"""The operator's switch apart from the profile; a TOTP enrolment kept until confirmed

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06

`account.operator_disabled`: `mss patient disable` (the operator's), kept apart from the
profile's status, so that reopening a profile does not switch an account back on that
the operator switched off (`account.disabled` stays what every door checks: the
operator's switch, or a profile not active). Existing disabled accounts of active
profiles (and of non-patients) were the operator's.

`space_totp.pending_secret`: a new TOTP enrolment started while another is in use; the
confirmed secret stays in service until a code of the new one confirms it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account") as table:
        table.add_column(
            sa.Column("operator_disabled", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("space_totp") as table:
        table.add_column(sa.Column("pending_secret", sa.String(64), nullable=True))
    account = sa.table("account", sa.column("disabled", sa.Boolean()),
                       sa.column("operator_disabled", sa.Boolean()),
                       sa.column("patient_id", sa.Integer()))  # fmt: skip
    patient = sa.table("patient", sa.column("id", sa.Integer()),
                       sa.column("profile_status", sa.String()),
                       sa.column("identity_status", sa.String()))  # fmt: skip
    active = sa.select(patient.c.id).where(
        patient.c.profile_status == "active", patient.c.identity_status == "QUAL"
    )
    op.execute(
        account.update()
        .where(account.c.disabled == sa.true())
        .where(sa.or_(account.c.patient_id.is_(None), account.c.patient_id.in_(active)))
        .values(operator_disabled=sa.true())
    )


def downgrade() -> None:
    with op.batch_alter_table("space_totp") as table:
        table.drop_column("pending_secret")
    with op.batch_alter_table("account") as table:
        table.drop_column("operator_disabled")
