"""The refunds of orders, as payments reports them: the port and the SQL adapter.

A refund is keyed by the payments refund id, so a redelivered or republished event changes
nothing. It is kept even when its order is not known yet (the event overtook the order's
commit) and shows once the order exists. Its status moves only from `pending`: the first
terminal status reported (`succeeded` or `failed`) wins (ADR 006).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, cast

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.orders.domain import TERMINAL_REFUND_STATUSES, Refund
from services.orders.tables import RefundRow


class RefundRepository(Protocol):
    async def record(self, refund: Refund) -> bool:
        """Insert, or move a pending refund to the reported status; True if a row changed."""
        ...

    async def get(self, refund_id: str) -> Refund | None: ...

    async def for_orders(self, order_ids: Sequence[str]) -> dict[str, tuple[Refund, ...]]: ...


class SqlRefundRepository:
    """Refunds in the orders database, within the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(self, refund: Refund) -> bool:
        # One statement, so two racing deliveries of one refund meet on the primary key and
        # the guard decides for both: a terminal row is never overwritten.
        refunds = cast(Table, RefundRow.__table__)
        dialect = self.session.get_bind().dialect.name
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(refunds)
        statement = (
            insert.values(
                id=refund.id,
                order_id=refund.order_id,
                amount=refund.amount,
                currency=refund.currency,
                status=refund.status,
                reason=refund.reason,
                created_at=refund.created_at,
                updated_at=refund.updated_at,
            )
            .on_conflict_do_update(
                index_elements=[refunds.c.id],
                set_={"status": insert.excluded.status, "updated_at": insert.excluded.updated_at},
                where=refunds.c.status.not_in(sorted(TERMINAL_REFUND_STATUSES)),
            )
            .returning(refunds.c.id)
        )
        return (await self.session.execute(statement)).first() is not None

    async def get(self, refund_id: str) -> Refund | None:
        row = await self.session.scalar(select(RefundRow).where(RefundRow.id == refund_id))
        return None if row is None else _to_refund(row)

    async def for_orders(self, order_ids: Sequence[str]) -> dict[str, tuple[Refund, ...]]:
        """The refunds of a page of orders in one query, each order's oldest first."""
        if not order_ids:
            return {}
        rows = await self.session.scalars(
            select(RefundRow)
            .where(RefundRow.order_id.in_(list(order_ids)))
            .order_by(RefundRow.order_id, RefundRow.created_at, RefundRow.id)
        )
        found: dict[str, list[Refund]] = {}
        for row in rows:
            found.setdefault(row.order_id, []).append(_to_refund(row))
        return {order_id: tuple(refunds) for order_id, refunds in found.items()}


def _to_refund(row: RefundRow) -> Refund:
    return Refund(
        id=row.id,
        order_id=row.order_id,
        amount=row.amount,
        currency=row.currency,
        status=row.status,  # type: ignore[arg-type]
        reason=row.reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
