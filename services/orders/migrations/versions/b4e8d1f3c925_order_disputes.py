"""order_disputes: each dispute of an order's payment as payments reported it (ADR 006)

Revision ID: b4e8d1f3c925
Revises: a7c41e9d2b60
Create Date: 2026-12-08 00:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import libs.runtime.db

revision: str = "b4e8d1f3c925"
down_revision: str | None = "a7c41e9d2b60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "order_disputes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("evidence_due_by", libs.runtime.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("opened_at", libs.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", libs.runtime.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", libs.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_disputes")),
    )
    op.create_index(
        "ix_order_disputes_order_opened", "order_disputes", ["order_id", "opened_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_order_disputes_order_opened", table_name="order_disputes")
    op.drop_table("order_disputes")
