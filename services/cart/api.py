"""The cart's HTTP API (internal: the gateway calls it for the principal in the header)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import ValidationError

from libs.contracts.cart import (
    AddLineIn,
    CartOut,
    CheckoutCartIn,
    FrozenCart,
    MergeIn,
    MergeOut,
    SetQuantityIn,
)
from libs.contracts.common import PRINCIPAL_HEADER, Principal
from libs.runtime.http import SERVICE_TOKEN_HEADER
from libs.runtime.problems import Unauthorized
from services.cart.service import CartService

LOCALE_PATTERN = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$"


def get_service(request: Request) -> CartService:
    service: CartService = request.app.state.cart.service
    return service


def get_principal(
    header: Annotated[str | None, Header(alias=PRINCIPAL_HEADER, include_in_schema=False)] = None,
) -> Principal:
    """The caller as the gateway established it; a request without one is refused."""
    if not header:
        raise Unauthorized(f"The {PRINCIPAL_HEADER} header is missing.", code="principal_required")
    try:
        return Principal.model_validate_json(header)
    except ValidationError:
        raise Unauthorized(
            f"The {PRINCIPAL_HEADER} header is not a principal.", code="principal_invalid"
        ) from None


def require_service_token(
    request: Request,
    token: Annotated[
        str | None, Header(alias=SERVICE_TOKEN_HEADER, include_in_schema=False)
    ] = None,
) -> None:
    """Merge and checkout come from the gateway only: it sends the shared service token."""
    expected = request.app.state.cart.settings.runtime.service_token
    if token is None or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized("A valid service token is required.", code="invalid_service_token")


Service = Annotated[CartService, Depends(get_service)]
Caller = Annotated[Principal, Depends(get_principal)]
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
