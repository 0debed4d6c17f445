"""order_fulfillments: each shipment of an order (carrier, tracking, lines); all orders by date

Revision ID: e1c4f7a9b3d2
Revises: e5b2d7a9c418
Create Date: 2026-12-08 02:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import libs.runtime.db

revision: str = "e1c4f7a9b3d2"
down_revision: str | None = "e5b2d7a9c418"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "order_fulfillments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("carrier", sa.String(length=100), nullable=False),
        sa.Column("tracking_number", sa.String(length=100), nullable=False),
        sa.Column("tracking_url", sa.String(length=2000), nullable=True),
        sa.Column("lines", libs.runtime.db.JSONType, nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("created_at", libs.runtime.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_fulfillments_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_fulfillments")),
    )
    # Every order, newest first: the operator's list.
    op.create_index("ix_orders_created", "orders", ["created_at", "id"])
    op.create_index(
        "ix_order_fulfillments_order_created",
        "order_fulfillments",
        ["order_id", "created_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_order_fulfillments_order_created", table_name="order_fulfillments")
    op.drop_table("order_fulfillments")
    op.drop_index("ix_orders_created", table_name="orders")
