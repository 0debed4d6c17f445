"""Stock: per-product levels (tracked, on hand, reserved) and per-order reservations.

Revision ID: 8c3f1a6d9e52
Revises: a4c7e2f9b310
Create Date: 2026-12-08 02:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import libs.runtime.db

revision: str = "8c3f1a6d9e52"
down_revision: str | None = "a4c7e2f9b310"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stock_levels",
        sa.Column("product_id", sa.String(length=36), nullable=False),
        sa.Column("tracked", sa.Boolean(), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.Column("updated_at", libs.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_stock_levels_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_stock_levels")),
    )
    op.create_table(
        "stock_reservations",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("product_id", sa.String(length=36), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("attempt_id", sa.String(length=64), nullable=True),
        sa.Column("expires_at", libs.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("backordered", sa.Integer(), nullable=False),
        sa.Column("created_at", libs.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", libs.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_stock_reservations_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("order_id", "product_id", name=op.f("pk_stock_reservations")),
    )
    op.create_index(
        op.f("ix_stock_reservations_expiry"),
        "stock_reservations",
        ["status", "expires_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_stock_reservations_expiry"), table_name="stock_reservations")
    op.drop_table("stock_reservations")
    op.drop_table("stock_levels")
