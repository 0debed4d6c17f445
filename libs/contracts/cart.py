"""Cart DTOs. The cart service acts for the principal in the `x-store-principal` header."""

from __future__ import annotations

from pydantic import Field

from libs.contracts.common import Owner
from libs.contracts.envelope import Contract
from libs.contracts.events import CartLineSnapshot, Interval


class CartLineOut(Contract):
    line_id: str
    pricing_id: str
    product_key: str
    name: str
    quantity: int
    unit_amount: int
    subtotal: int
    interval: Interval | None = None
    interval_count: int = 1


class CartOut(Contract):
    """The summarized cart: `GET /carts/current` (internal), `GET /api/store/cart` (public)."""

    cart_id: str | None = None
    lines: list[CartLineOut] = Field(default_factory=list)
    currency: str | None = None
    subtotal: int = 0
    total: int = 0
    item_count: int = 0
    starts_subscription: bool = False


class AddLineIn(Contract):
    pricing_id: str = Field(min_length=1, max_length=64)
    quantity: int = Field(1, ge=1)


class SetQuantityIn(Contract):
    quantity: int = Field(ge=1)


class MergeIn(Contract):
    """Internal: `POST /carts/merge`."""

    anonymous_id: str
    user_id: str


class MergeOut(Contract):
    merged: bool = Field(description="False when there was nothing (left) to merge.")
    cart: CartOut


class FrozenCart(Contract):
    """Internal: `POST /carts/current/checkout` — the cart frozen for one order."""

    cart_id: str
    order_id: str
    owner: Owner
    currency: str
    lines: list[CartLineSnapshot]
