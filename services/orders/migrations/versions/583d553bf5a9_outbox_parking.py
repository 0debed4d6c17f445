"""Outbox rows can be parked after repeated failures, and carry an ordering key.

Revision ID: 583d553bf5a9
Revises: cf2074f2cf77
Create Date: 2026-12-01 14:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import libs.runtime.db

revision: str = "583d553bf5a9"
down_revision: str | None = "cf2074f2cf77"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("parked_at", libs.runtime.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("ordering_key", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("ordering_key")
        batch_op.drop_column("parked_at")
