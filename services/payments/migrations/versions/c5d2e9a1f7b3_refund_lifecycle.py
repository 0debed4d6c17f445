"""Refunds live until the provider settles them: pending, then succeeded, failed or canceled,
with their tries, the next try and the failure reason; `refunded` becomes `succeeded`.

Revision ID: c5d2e9a1f7b3
Revises: b7c1d2e3f4a5
Create Date: 2026-12-07 23:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import libs.runtime.db

revision: str = "c5d2e9a1f7b3"
down_revision: str | None = "b7c1d2e3f4a5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failure_reason", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("tries", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("next_try_at", libs.runtime.db.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_index(
        "ix_refunds_provider_refund_id", "refunds", ["provider_refund_id"], unique=False
    )
    op.execute("UPDATE refunds SET status = 'succeeded' WHERE status = 'refunded'")


def downgrade() -> None:
    op.execute("UPDATE refunds SET status = 'refunded' WHERE status = 'succeeded'")
    op.drop_index("ix_refunds_provider_refund_id", table_name="refunds")
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_column("next_try_at")
        batch_op.drop_column("tries")
        batch_op.drop_column("failure_reason")
