"""Invoices of a new period the provider could not charge, one row per invoice and reason, so
that each past-due subscription is announced once.

Revision ID: e1f4a7b9c2d5
Revises: d8e3f0a2b6c4
Create Date: 2026-12-08 00:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import libs.runtime.db

revision: str = "e1f4a7b9c2d5"
down_revision: str | None = "d8e3f0a2b6c4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subscription_past_dues",
        sa.Column("subscription_id", sa.String(length=36), nullable=False),
        sa.Column("invoice_reference", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("created_at", libs.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "subscription_id",
            "invoice_reference",
            "reason",
            name=op.f("pk_subscription_past_dues"),
        ),
    )


def downgrade() -> None:
    op.drop_table("subscription_past_dues")
