"""Outbox indexes over the rows still to publish, so a week of published history costs the
relay nothing (see libs/runtime/outbox.py, outbox_indexes).

Revision ID: d3f9e5c2a639
Revises: 583d553bf5a9
Create Date: 2026-12-01 17:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d3f9e5c2a639"
down_revision: str | None = "583d553bf5a9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = "published_at IS NULL AND parked_at IS NULL"
HELD = "published_at IS NULL AND parked_at IS NOT NULL"
PUBLISHED = "published_at IS NOT NULL"


def upgrade() -> None:
    for name, columns, condition in (
        ("ix_outbox_unpublished", ["id"], PENDING),
        ("ix_outbox_parked", ["ordering_key", "id"], HELD),
        ("ix_outbox_published_at", ["published_at"], PUBLISHED),
    ):
        op.create_index(
            name,
            "outbox",
            columns,
            postgresql_where=sa.text(condition),
            sqlite_where=sa.text(condition),
        )
    op.drop_index("ix_outbox_pending", table_name="outbox")


def downgrade() -> None:
    op.create_index("ix_outbox_pending", "outbox", ["published_at", "id"])
    op.drop_index("ix_outbox_published_at", table_name="outbox")
    op.drop_index("ix_outbox_parked", table_name="outbox")
    op.drop_index("ix_outbox_unpublished", table_name="outbox")
