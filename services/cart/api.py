"""The cart's HTTP API (internal: the gateway calls it for the principal in the header)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from libs.contracts.cart import (
    AddLineIn,
    CartOut,
    CheckoutCartIn,
    FrozenCart,
    MergeIn,
    MergeOut,
    SetQuantityIn,
)
from libs.contracts.common import Principal
from libs.runtime.auth import require_principal, require_service_token
from services.cart.service import CartService

LOCALE_PATTERN = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$"


async def get_service(request: Request) -> CartService:
    service: CartService = request.app.state.cart.service
    return service


Service = Annotated[CartService, Depends(get_service)]
Caller = Annotated[Principal, Depends(require_principal)]
Locale = Annotated[
    str | None,
    Query(max_length=35, pattern=LOCALE_PATTERN, description="Locale of product names, e.g. de."),
]

router = APIRouter(prefix="/carts", tags=["carts"])


@router.get("/current", response_model=CartOut)
async def get_current_cart(service: Service, principal: Caller, locale: Locale = None) -> CartOut:
    """The caller's current cart, summarized; an empty cart when there is none."""
    return await service.get_cart_summarized(principal=principal, locale=locale)


@router.post("/current/lines", response_model=CartOut)
async def add_line(
    body: AddLineIn, service: Service, principal: Caller, locale: Locale = None
) -> CartOut:
    """Add a price to the cart; adding the same price again raises its quantity."""
    return await service.add_to_cart(
        principal=principal, pricing_id=body.pricing_id, quantity=body.quantity, locale=locale
    )


@router.patch("/current/lines/{line_id}", response_model=CartOut)
async def set_line_quantity(
    line_id: str, body: SetQuantityIn, service: Service, principal: Caller, locale: Locale = None
) -> CartOut:
    """Set the quantity of a line."""
    return await service.set_line_quantity(
        principal=principal, line_id=line_id, quantity=body.quantity, locale=locale
    )


@router.delete("/current/lines/{line_id}", response_model=CartOut)
async def remove_line(
    line_id: str, service: Service, principal: Caller, locale: Locale = None
) -> CartOut:
    """Remove a line from the cart."""
    return await service.remove_line_from_cart(principal=principal, line_id=line_id, locale=locale)


@router.post(
    "/current/checkout", response_model=FrozenCart, dependencies=[Depends(require_service_token)]
)
async def checkout(body: CheckoutCartIn, service: Service, principal: Caller) -> FrozenCart:
    """Freeze the current cart for the proposed order id (once; retries get the same cart)."""
    return await service.checkout(principal=principal, order_id=body.order_id)


@router.post("/merge", response_model=MergeOut, dependencies=[Depends(require_service_token)])
async def merge(body: MergeIn, service: Service, locale: Locale = None) -> MergeOut:
    """Move an anonymous shopper's cart into the user's cart, once (anonymous_to_user)."""
    return await service.anonymous_to_user(
        anonymous_id=body.anonymous_id, user_id=body.user_id, locale=locale
    )
