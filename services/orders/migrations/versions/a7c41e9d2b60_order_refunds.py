"""order_refunds: each refund of an order as payments reported it (ADR 006)

Revision ID: a7c41e9d2b60
Revises: d3f9e5c2a639
Create Date: 2026-12-07 23:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import libs.runtime.db

revision: str = "a7c41e9d2b60"
down_revision: str | None = "d3f9e5c2a639"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "order_refunds",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("created_at", libs.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", libs.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_refunds")),
    )
    op.create_index(
        "ix_order_refunds_order_created", "order_refunds", ["order_id", "created_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_order_refunds_order_created", table_name="order_refunds")
    op.drop_table("order_refunds")
