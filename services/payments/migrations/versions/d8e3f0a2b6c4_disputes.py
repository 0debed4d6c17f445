"""Disputes: one row per provider dispute of a payment, with its status, evidence deadline and
when it was opened and closed; attempts are found by their payment's reference.

Revision ID: d8e3f0a2b6c4
Revises: c5d2e9a1f7b3
Create Date: 2026-12-07 23:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import libs.runtime.db

revision: str = "d8e3f0a2b6c4"
down_revision: str | None = "c5d2e9a1f7b3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "disputes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("provider_dispute_id", sa.String(length=255), nullable=False),
        sa.Column("attempt_id", sa.String(length=36), nullable=True),
        sa.Column("order_id", sa.String(length=36), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("evidence_due_by", libs.runtime.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("opened_at", libs.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", libs.runtime.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", libs.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disputes")),
        sa.UniqueConstraint(
            "provider",
            "provider_dispute_id",
            name=op.f("uq_disputes_provider_provider_dispute_id"),
        ),
    )
    op.create_index("ix_disputes_order_id", "disputes", ["order_id"], unique=False)
    op.create_index(
        "ix_payment_attempts_provider_reference",
        "payment_attempts",
        ["provider_reference"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_payment_attempts_provider_reference", table_name="payment_attempts")
    op.drop_index("ix_disputes_order_id", table_name="disputes")
    op.drop_table("disputes")
