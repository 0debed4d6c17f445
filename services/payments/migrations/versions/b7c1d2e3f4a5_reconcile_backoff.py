"""Each unpaid attempt counts reconciliation's looks at it (the backoff of its next look), and
the attempts to reconcile have an index of their own.

Revision ID: b7c1d2e3f4a5
Revises: e4a0f6d3b74a
Create Date: 2026-12-07 13:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7c1d2e3f4a5"
down_revision: str | None = "e4a0f6d3b74a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payment_attempts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reconcile_checks", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_index(
        "ix_payment_attempts_to_reconcile",
        "payment_attempts",
        ["reconcile_after", "created_at"],
        unique=False,
        sqlite_where=sa.text("status = 'unpaid'"),
        postgresql_where=sa.text("status = 'unpaid'"),
    )


def downgrade() -> None:
    op.drop_index("ix_payment_attempts_to_reconcile", table_name="payment_attempts")
    with op.batch_alter_table("payment_attempts", schema=None) as batch_op:
        batch_op.drop_column("reconcile_checks")
