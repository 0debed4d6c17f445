"""The disputes of orders' payments, as payments reports them: the port and the SQL adapter.

A dispute is keyed by the payments dispute id, so a redelivered or republished event changes
nothing. The opened report inserts it; the closed report ends it once (or inserts it already
closed, when it overtook its opened report across retries). A closed dispute never reopens:
an opened report after it changes nothing (ADR 006).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, cast

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.orders.domain import Dispute
from services.orders.tables import DisputeRow


class DisputeRepository(Protocol):
    async def record(self, dispute: Dispute, *, at: datetime) -> bool:
        """Insert, or end an open dispute with the closed report; True if a row changed."""
        ...

    async def for_orders(self, order_ids: Sequence[str]) -> dict[str, tuple[Dispute, ...]]: ...


class SqlDisputeRepository:
    """Disputes in the orders database, within the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(self, dispute: Dispute, *, at: datetime) -> bool:
        # One statement, so two racing deliveries meet on the primary key and the guard
        # decides for both.
        disputes = cast(Table, DisputeRow.__table__)
        dialect = self.session.get_bind().dialect.name
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(disputes)
        values = insert.values(
            id=dispute.id,
            order_id=dispute.order_id,
            amount=dispute.amount,
            currency=dispute.currency,
            reason=dispute.reason,
            status=dispute.status,
            evidence_due_by=dispute.evidence_due_by,
            opened_at=dispute.opened_at,
            closed_at=dispute.closed_at,
            updated_at=at,
        )
        if dispute.closed_at is None:
            # An opened report adds nothing to a dispute already known, open or closed.
            statement = values.on_conflict_do_nothing(index_elements=[disputes.c.id])
        else:
            statement = values.on_conflict_do_update(
                index_elements=[disputes.c.id],
                set_={
                    "status": insert.excluded.status,
                    "evidence_due_by": insert.excluded.evidence_due_by,
                    "closed_at": insert.excluded.closed_at,
                    "updated_at": insert.excluded.updated_at,
                },
                where=disputes.c.closed_at.is_(None),
            )
        returning = statement.returning(disputes.c.id)
        return (await self.session.execute(returning)).first() is not None

    async def for_orders(self, order_ids: Sequence[str]) -> dict[str, tuple[Dispute, ...]]:
        """The disputes of a page of orders in one query, each order's oldest first."""
        if not order_ids:
            return {}
        rows = await self.session.scalars(
            select(DisputeRow)
            .where(DisputeRow.order_id.in_(list(order_ids)))
            .order_by(DisputeRow.order_id, DisputeRow.opened_at, DisputeRow.id)
        )
        found: dict[str, list[Dispute]] = {}
        for row in rows:
            found.setdefault(row.order_id, []).append(_to_dispute(row))
        return {order_id: tuple(disputes) for order_id, disputes in found.items()}


def _to_dispute(row: DisputeRow) -> Dispute:
    return Dispute(
        id=row.id,
        order_id=row.order_id,
        amount=row.amount,
        currency=row.currency,
        reason=row.reason,
        status=row.status,  # type: ignore[arg-type]
        evidence_due_by=row.evidence_due_by,
        opened_at=row.opened_at,
        closed_at=row.closed_at,
    )
