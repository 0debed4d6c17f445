"""`/api/store/cart`: the shopper's cart."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from gateway.deps import CurrentCaller, CurrentLocale, Deps
from gateway.idempotency import Idempotent
from libs.contracts.cart import AddLineIn, CartOut, SetQuantityIn

router = APIRouter(prefix="/api/store/cart", tags=["cart"])

LineId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._~-]+$")]


@router.get("", summary="The cart, summarized")
async def get_cart(deps: Deps, caller: CurrentCaller, locale: CurrentLocale) -> CartOut:
    """Lines with names, unit prices and subtotals; totals and item count."""
    return await deps.interactor.get_cart_summarized(caller, locale=locale)


@router.post("/lines", summary="Add to cart", dependencies=[Idempotent])
async def add_line(
    body: AddLineIn, deps: Deps, caller: CurrentCaller, locale: CurrentLocale
) -> CartOut:
    """Add a pricing to the cart; adding it again raises the quantity. Sets the anonymous
    cookie when the caller has no identity yet."""
    return await deps.interactor.add_to_cart(caller, body, locale=locale)


@router.patch("/lines/{line_id}", summary="Set a line's quantity")
async def update_line(
    line_id: LineId, body: SetQuantityIn, deps: Deps, caller: CurrentCaller, locale: CurrentLocale
) -> CartOut:
    """Set the quantity of one line."""
    return await deps.interactor.update_line(caller, line_id, body, locale=locale)


@router.delete("/lines/{line_id}", summary="Remove a line")
async def remove_line(
    line_id: LineId, deps: Deps, caller: CurrentCaller, locale: CurrentLocale
) -> CartOut:
    """Remove one line from the cart."""
    return await deps.interactor.remove_line_from_cart(caller, line_id, locale=locale)
