"""Operator and Dashboard refunds: a payment may have several refunds, each once per order by
its idempotency key (`attempt:<id>` for the automatic one, which keeps it one per attempt); an
operator's refund keeps its actor, reason, request digest and lines; attempts keep the order's
lines, which a refund by lines is priced from.

Revision ID: a3c7e9f1b2d4
Revises: a9d4c6e2f817
Create Date: 2026-12-08 02:15:00.000000
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "a3c7e9f1b2d4"
down_revision: str | None = "a9d4c6e2f817"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("payment_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("order_lines", _json(), nullable=True))
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("actor", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("note", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("request_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("lines", _json(), nullable=True))
    # Every refund so far was the automatic one of its attempt.
    op.execute("UPDATE refunds SET idempotency_key = 'attempt:' || attempt_id")
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.alter_column(
            "idempotency_key", existing_type=sa.String(length=255), nullable=False
        )
        batch_op.drop_constraint("uq_refunds_attempt_id", type_="unique")
        batch_op.create_unique_constraint(
            "uq_refunds_order_id_idempotency_key", ["order_id", "idempotency_key"]
        )
        batch_op.create_index("ix_refunds_attempt_id", ["attempt_id"], unique=False)


def downgrade() -> None:
    # The old rule allows one refund per attempt: only the oldest of each attempt stays.
    op.execute(
        "DELETE FROM refunds WHERE EXISTS (SELECT 1 FROM refunds AS older "
        "WHERE older.attempt_id = refunds.attempt_id AND (older.created_at < refunds.created_at "
        "OR (older.created_at = refunds.created_at AND older.id < refunds.id)))"
    )
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_index("ix_refunds_attempt_id")
        batch_op.drop_constraint("uq_refunds_order_id_idempotency_key", type_="unique")
        batch_op.create_unique_constraint("uq_refunds_attempt_id", ["attempt_id"])
        batch_op.drop_column("lines")
        batch_op.drop_column("request_hash")
        batch_op.drop_column("note")
        batch_op.drop_column("actor")
        batch_op.drop_column("idempotency_key")
    with op.batch_alter_table("payment_attempts", schema=None) as batch_op:
        batch_op.drop_column("order_lines")
