"""order_renewals: the renewal order of each paid subscription invoice, keyed by the invoice

Revision ID: e5b2d7a9c418
Revises: c7a3e1f5b902
Create Date: 2026-12-08 02:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import libs.runtime.db

revision: str = "e5b2d7a9c418"
down_revision: str | None = "c7a3e1f5b902"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "order_renewals",
        sa.Column("invoice_reference", sa.String(length=255), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("subscription_id", sa.String(length=64), nullable=False),
        sa.Column("first_order_id", sa.String(length=36), nullable=False),
        sa.Column("period_end", libs.runtime.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", libs.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("invoice_reference", name=op.f("pk_order_renewals")),
        sa.UniqueConstraint("order_id", name=op.f("uq_order_renewals_order_id")),
    )
    op.create_index(
        "ix_order_renewals_subscription", "order_renewals", ["subscription_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_order_renewals_subscription", table_name="order_renewals")
    op.drop_table("order_renewals")
