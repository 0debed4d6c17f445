"""Paid → sale: when an order is paid, its stock reservation at catalog becomes a sale
(docs/stock.md). Lines whose hold was released before the money landed are sold anyway; what
catalog could not cover is `backordered`, and the order says so, with one event.

The catalog call runs inside the payment handler's transaction: if anything after it fails,
the bus redelivers the payment and the call is made again, which catalog answers the same
(a sold reservation stays sold, with the backordered units it recorded).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol
from urllib.parse import quote

import structlog
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.contracts.catalog import ReservationOut
from libs.contracts.events import BackorderedLine, OrderBackordered
from libs.runtime.http import ServiceClient
from libs.runtime.problems import ProblemError
from libs.runtime.runtime import Runtime
from services.orders.domain import Order
from services.orders.tables import OrderRow

log = structlog.get_logger(__name__)


class StockLedger(Protocol):
    async def commit(self, order_id: str) -> ReservationOut | None:
        """Sell the order's reservation (idempotent); None: catalog keeps no stock."""
        ...


class CatalogStock:
    """The catalog's reservation of an order, over HTTP (in-process ASGI when embedded)."""

    def __init__(self, client: Callable[[], ServiceClient]) -> None:
        self._client = client

    async def commit(self, order_id: str) -> ReservationOut | None:
        try:
            return await self._client().call(
                "POST",
                f"/internal/stock/reservations/{quote(order_id, safe='')}/commit",
                ReservationOut,
            )
        except ProblemError as exc:
            if exc.status == 404:  # a catalog from before stock (a rolling upgrade)
                log.warning("order.stock_commit_unsupported", order_id=order_id)
                return None
            raise


def backordered_lines(reservation: ReservationOut | None) -> list[BackorderedLine]:
    """The units catalog sold without stock to cover them."""
    if reservation is None:
        return []
    return [
        BackorderedLine(product_key=line.product_key, quantity=line.backordered)
        for line in reservation.lines
        if line.backordered > 0
    ]


async def sell_reserved_stock(
    runtime: Runtime, ledger: StockLedger, session: AsyncSession, order: Order
) -> None:
    """Turn a just-paid order's reservation into a sale; flag and announce a backorder once
    (this runs only in the transaction that set `paid`)."""
    lines = backordered_lines(await ledger.commit(order.id))
    if not lines:
        return
    await session.execute(
        update(OrderRow.__table__)  # type: ignore[arg-type]
        .where(OrderRow.id == order.id)
        .values(backordered=True)
    )
    await runtime.record(
        session,
        OrderBackordered(
            order_id=order.id,
            number=order.number,
            owner=order.owner,
            lines=lines,
            at=order.paid or order.created_at,
        ),
        ordering_key=f"order:{order.id}",
    )
    log.warning("order.backordered", order_id=order.id, lines=len(lines))
