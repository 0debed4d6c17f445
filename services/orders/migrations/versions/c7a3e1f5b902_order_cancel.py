"""orders.canceled_*: an unpaid order can be canceled, once; a canceled order is never paid

Revision ID: c7a3e1f5b902
Revises: b4e8d1f3c925
Create Date: 2026-12-08 02:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import libs.runtime.db

revision: str = "c7a3e1f5b902"
down_revision: str | None = "b4e8d1f3c925"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(
            sa.Column("canceled_at", libs.runtime.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("canceled_by", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("cancel_reason", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("canceled_actor", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("canceled_actor")
        batch.drop_column("cancel_reason")
        batch.drop_column("canceled_by")
        batch.drop_column("canceled_at")
