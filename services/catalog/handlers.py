"""What the catalog consumes: HANDLERS, bound by `Runtime.subscribe(service, HANDLERS)`.

Published (through the outbox, in the transaction of the change): `ProductChanged`,
`PricingChanged`, and `StockChanged` on every change of a product's stock.
Consumed: `CartCheckedOut` (its prices are sold), `OrderCanceled` (release the order's stock)
and `PaymentExpired` (release the hold bound to that attempt, not a newer one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from libs.contracts.envelope import Event
from libs.contracts.events import CartCheckedOut, OrderCanceled, PaymentExpired
from libs.runtime.runtime import EventHandler

if TYPE_CHECKING:
    from services.catalog.service import CatalogService


async def on_cart_checked_out(
    service: CatalogService, session: AsyncSession, payload: CartCheckedOut
) -> None:
    """Prices in a checked-out cart are sold: from now on they are replaced, never edited."""
    await service.mark_prices_sold(session, pricing_ids=(line.pricing_id for line in payload.lines))


async def on_order_canceled(
    service: CatalogService, session: AsyncSession, payload: OrderCanceled
) -> None:
    """A canceled order's stock goes back, whichever attempt held it."""
    await service.stock.release_stock(order_id=payload.order_id, session=session)


async def on_payment_expired(
    service: CatalogService, session: AsyncSession, payload: PaymentExpired
) -> None:
    """An expired attempt releases the hold bound to it; a pay-again's newer hold stays."""
    await service.stock.release_stock(
        order_id=payload.order_id, attempt_id=payload.attempt_id, session=session
    )


HANDLERS: dict[type[Event], EventHandler] = {
    CartCheckedOut: on_cart_checked_out,
    OrderCanceled: on_order_canceled,
    PaymentExpired: on_payment_expired,
}
