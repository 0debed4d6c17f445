"""order_backordered: an order paid after its stock reservation was released, without stock to
cover it, is flagged `backordered` (docs/stock.md).

Revision ID: e6a2c8f4b713
Revises: e1c4f7a9b3d2
Create Date: 2026-12-08 02:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e6a2c8f4b713"
down_revision: str | None = "e1c4f7a9b3d2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (no batch rebuild): SQLite keeps the table and its immutability trigger.
    op.add_column(
        "orders",
        sa.Column("backordered", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch_op:
        batch_op.drop_column("backordered")
