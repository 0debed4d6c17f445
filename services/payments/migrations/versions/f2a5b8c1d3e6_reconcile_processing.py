"""Reconciliation's index covers processing attempts too: it asks about them until they settle.

Revision ID: f2a5b8c1d3e6
Revises: e1f4a7b9c2d5
Create Date: 2026-12-08 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f2a5b8c1d3e6"
down_revision: str | None = "e1f4a7b9c2d5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _index(where: str) -> None:
    op.create_index(
        "ix_payment_attempts_to_reconcile",
        "payment_attempts",
        ["reconcile_after", "created_at"],
        unique=False,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )


def upgrade() -> None:
    op.drop_index("ix_payment_attempts_to_reconcile", table_name="payment_attempts")
    _index("status IN ('unpaid', 'processing')")


def downgrade() -> None:
    op.drop_index("ix_payment_attempts_to_reconcile", table_name="payment_attempts")
    _index("status = 'unpaid'")
