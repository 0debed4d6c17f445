"""Shipping methods: reference data like tax rates (code, names, zone, prices, tax code,
delivery days).

Revision ID: 5b1e9c7d2a40
Revises: c2e8d4b1f528
Create Date: 2026-12-07 23:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import libs.runtime.db

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision: str = "5b1e9c7d2a40"
down_revision: str | None = "c2e8d4b1f528"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shipping_methods",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("names", JSON, nullable=False),
        sa.Column("countries", JSON, nullable=True),
        sa.Column("prices", JSON, nullable=False),
        sa.Column("tax_code", sa.String(length=64), nullable=True),
        sa.Column("delivery_days_min", sa.Integer(), nullable=False),
        sa.Column("delivery_days_max", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", libs.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", libs.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipping_methods")),
        sa.UniqueConstraint("code", name=op.f("uq_shipping_methods_code")),
    )


def downgrade() -> None:
    op.drop_table("shipping_methods")
