"""order_payments.canceled_at: a canceled order takes no new attempt, and its money goes back

Revision ID: d8b6f4a2c1e9
Revises: f2a5b8c1d3e6
Create Date: 2026-12-08 02:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import libs.runtime.db

revision: str = "d8b6f4a2c1e9"
down_revision: str | None = "f2a5b8c1d3e6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("order_payments") as batch:
        batch.add_column(
            sa.Column("canceled_at", libs.runtime.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("order_payments") as batch:
        batch.drop_column("canceled_at")
