"""subscriptions.renewals_checked_at: reconciliation asks the provider about each running
subscription's paid invoices in turn, so a renewal whose webhook was lost is recorded

Revision ID: a9d4c6e2f817
Revises: d8b6f4a2c1e9
Create Date: 2026-12-08 02:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import libs.runtime.db

revision: str = "a9d4c6e2f817"
down_revision: str | None = "d8b6f4a2c1e9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column is added in place on SQLite and PostgreSQL alike (no table copy).
    op.add_column(
        "subscriptions",
        sa.Column("renewals_checked_at", libs.runtime.db.UTCDateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_subscriptions_renewals_checked", "subscriptions", ["renewals_checked_at"])


def downgrade() -> None:
    op.drop_index("ix_subscriptions_renewals_checked", table_name="subscriptions")
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("renewals_checked_at")
