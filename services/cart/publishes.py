"""What the cart publishes: its records turned into contract events."""

from __future__ import annotations

from collections.abc import Sequence

from libs.contracts.events import AnonymousMerged, CartCheckedOut, CartLineSnapshot, CartMerged
from services.cart.domain import Cart


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
