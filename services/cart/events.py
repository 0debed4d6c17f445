"""What the cart publishes (domain -> contract) and what it consumes (SUBSCRIPTIONS)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from libs.contracts.envelope import Event
from libs.contracts.events import (
    AnonymousMerged,
    CartCheckedOut,
    CartLineSnapshot,
    CartMerged,
    OrderCreated,
    OrderPaid,
    PricingChanged,
    ProductChanged,
)
from services.cart.domain import Cart

if TYPE_CHECKING:
    from services.cart.service import CartService

# --- published -------------------------------------------------------------------------------


def cart_checked_out(cart: Cart) -> CartCheckedOut:
    assert cart.order_id is not None
    return CartCheckedOut(
        cart_id=cart.cart_id, order_id=cart.order_id, owner=cart.owner, lines=cart.snapshot()
    )


def cart_merged(
    *, cart: Cart, anonymous_id: str, user_id: str, moved: Sequence[CartLineSnapshot]
) -> CartMerged:
    return CartMerged(
        cart_id=cart.cart_id, anonymous_id=anonymous_id, user_id=user_id, lines=list(moved)
    )


def anonymous_merged(*, anonymous_id: str, user_id: str) -> AnonymousMerged:
    return AnonymousMerged(anonymous_id=anonymous_id, user_id=user_id)


# --- consumed --------------------------------------------------------------------------------


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


Handler = Callable[[Any, AsyncSession, Any], Awaitable[None]]

SUBSCRIPTIONS: dict[type[Event], Handler] = {
    OrderCreated: on_order_created,
    OrderPaid: on_order_paid,
    PricingChanged: on_pricing_changed,
    ProductChanged: on_product_changed,
}
