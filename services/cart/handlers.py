"""What the cart consumes: HANDLERS, bound by `Runtime.subscribe(service, HANDLERS)`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from libs.contracts.envelope import Event
from libs.contracts.events import OrderCreated, OrderPaid, PricingChanged, ProductChanged
from libs.runtime.runtime import EventHandler

if TYPE_CHECKING:
    from services.cart.service import CartService


async def on_order_created(
    service: CartService, session: AsyncSession, event: OrderCreated
) -> None:
    """The order of a frozen cart exists (kept with the cart, for the record)."""
    await service.confirm_order(session, order_id=event.order_id)


async def on_order_paid(service: CartService, session: AsyncSession, event: OrderPaid) -> None:
    """The order of a frozen cart is paid: a retried checkout no longer returns that cart."""
    await service.mark_order_paid(session, order_id=event.order_id)


async def on_pricing_changed(
    service: CartService, session: AsyncSession, event: PricingChanged
) -> None:
    """A price changed: cached copies are dropped, the next summary shows the new one."""
    await service.forget_pricing(pricing_id=event.pricing_id)


async def on_product_changed(
    service: CartService, session: AsyncSession, event: ProductChanged
) -> None:
    """A product's names or availability changed: its cached prices are dropped."""
    await service.forget_product(product_key=event.product_key)


HANDLERS: dict[type[Event], EventHandler] = {
    OrderCreated: on_order_created,
    OrderPaid: on_order_paid,
    PricingChanged: on_pricing_changed,
    ProductChanged: on_product_changed,
}
