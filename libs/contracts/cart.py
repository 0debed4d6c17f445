"""Cart DTOs. The cart service acts for the principal in the `x-store-principal` header."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from libs.contracts.common import Owner
from libs.contracts.envelope import Contract
from libs.contracts.events import CartLineSnapshot, Interval


class CartLineOut(Contract):
    line_id: str = Field(
        description="Stable while the line exists; a re-added price gets a new one."
    )
    pricing_id: str
    product_key: str
    name: str
    quantity: int
    unit_amount: int
    subtotal: int
    interval: Interval | None = None
    interval_count: int = 1
    available: bool = Field(
        default=True,
        description="False when the price or its product can no longer be bought: the line is "
        "kept but left out of the totals; remove it before checking out.",
    )


class CartOut(Contract):
    """The summarized cart: `GET /carts/current` (internal), `GET /api/store/cart` (public)."""

    cart_id: str | None = None
    lines: list[CartLineOut] = Field(default_factory=list)
    currency: str | None = None
    subtotal: int = 0
    total: int = Field(default=0, description="= subtotal; tax is computed by orders at checkout.")
    item_count: int = 0
    starts_subscription: bool = False
    requires_shipping: bool = Field(
        default=False, description="A line is a physical good: checkout needs `shipping`."
    )

    model_config = Contract.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "cart_id": "0b7f5c1e-8a47-4d44-9f5e-2f0c6f0e5a10",
                    "lines": [
                        {
                            "line_id": "6f1d2c3b-4a59-4e8f-9d7c-1b2a3c4d5e6f",
                            "pricing_id": "price-mug-eur",
                            "product_key": "mug",
                            "name": "Mug",
                            "quantity": 2,
                            "unit_amount": 1290,
                            "subtotal": 2580,
                            "interval": None,
                            "interval_count": 1,
                            "available": True,
                        }
                    ],
                    "currency": "EUR",
                    "subtotal": 2580,
                    "total": 2580,
                    "item_count": 2,
                    "starts_subscription": False,
                    "requires_shipping": True,
                }
            ]
        }
    }


# No cart line holds more (CART_MAX_QUANTITY_PER_LINE is at most this): a larger number is
# refused as input, before anything (the stock check, the cart) works with it.
MAX_LINE_QUANTITY = 1_000_000


class AddLineIn(Contract):
    pricing_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._~:-]+$")
    quantity: int = Field(default=1, ge=1, le=MAX_LINE_QUANTITY)


class SetQuantityIn(Contract):
    quantity: int = Field(ge=1, le=MAX_LINE_QUANTITY)


class MergeIn(Contract):
    """Internal: `POST /carts/merge`."""

    anonymous_id: str = Field(min_length=1, max_length=200)
    user_id: str = Field(min_length=1, max_length=200)


DropReason = Literal["currency_mismatch", "quantity_capped", "too_many_lines"]


class DroppedLine(Contract):
    """Part of the anonymous cart a merge could not move into the user's cart, and why."""

    pricing_id: str
    quantity: int = Field(description="How many units did not move.")
    reason: DropReason


class MergeOut(Contract):
    merged: bool = Field(
        description="True when this call merged the anonymous id (its first merge, even with an "
        "empty cart); False when it had been merged before: nothing (left) to merge."
    )
    cart: CartOut
    dropped: list[DroppedLine] = Field(default_factory=list)


class CheckoutCartIn(Contract):
    """Internal: `POST /carts/current/checkout` — the order id the caller proposes."""

    order_id: str = Field(min_length=1, max_length=64)


class FrozenCart(Contract):
    """Internal: `POST /carts/current/checkout` — the cart frozen for one order."""

    cart_id: str
    order_id: str
    owner: Owner
    currency: str
    lines: list[CartLineSnapshot]
