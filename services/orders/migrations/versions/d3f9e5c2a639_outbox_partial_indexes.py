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


def _where(condition: str) -> dict[str, sa.TextClause]:
    return {"postgresql_where": sa.text(condition), "sqlite_where": sa.text(condition)}


def upgrade() -> None:
    op.create_index("ix_outbox_unpublished", "outbox", ["id"], **_where(PENDING))
    op.create_index("ix_outbox_parked", "outbox", ["ordering_key", "id"], **_where(HELD))
    op.create_index("ix_outbox_published_at", "outbox", ["published_at"], **_where(PUBLISHED))
    op.drop_index("ix_outbox_pending", table_name="outbox")


def downgrade() -> None:
    op.create_index("ix_outbox_pending", "outbox", ["published_at", "id"])
    op.drop_index("ix_outbox_published_at", table_name="outbox")
    op.drop_index("ix_outbox_parked", table_name="outbox")
    op.drop_index("ix_outbox_unpublished", table_name="outbox")
