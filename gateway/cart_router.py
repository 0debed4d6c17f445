"""`/api/store/cart`: the shopper's cart."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from gateway.deps import CurrentCaller, CurrentLocale, Deps
from gateway.idempotency import Idempotent
from libs.contracts.cart import AddLineIn, CartOut, SetQuantityIn
from libs.contracts.common import LINE_ID_PATTERN
from libs.runtime.http import Passthrough

router = APIRouter(prefix="/api/store/cart", tags=["cart"])

LineId = Annotated[str, Path(min_length=1, max_length=64, pattern=LINE_ID_PATTERN)]


def _cart(document: Passthrough[Any]) -> Response:
    # The cart service answers the public CartOut itself: its JSON goes out as it came in,
    # with no parsing and re-serializing here (`response_model` still documents it).
    return Response(document.content, media_type="application/json")


@router.get("", summary="The cart, summarized", response_model=CartOut)
async def get_cart(deps: Deps, caller: CurrentCaller, locale: CurrentLocale) -> Response:
    """Lines with names, unit prices and subtotals; totals and item count."""
    return _cart(await deps.interactor.get_cart_summarized(caller, locale=locale))


@router.post("/lines", summary="Add to cart", response_model=CartOut, dependencies=[Idempotent])
async def add_line(
    body: AddLineIn, deps: Deps, caller: CurrentCaller, locale: CurrentLocale
) -> Response:
    """Add a pricing to the cart; adding it again raises the quantity. Sets the anonymous
    cookie when the caller has no identity yet."""
    return _cart(await deps.interactor.add_to_cart(caller, body, locale=locale))


@router.patch("/lines/{line_id}", summary="Set a line's quantity", response_model=CartOut)
async def update_line(
    line_id: LineId, body: SetQuantityIn, deps: Deps, caller: CurrentCaller, locale: CurrentLocale
) -> Response:
    """Set the quantity of one line."""
    return _cart(await deps.interactor.update_line(caller, line_id, body, locale=locale))


@router.delete("/lines/{line_id}", summary="Remove a line", response_model=CartOut)
async def remove_line(
    line_id: LineId, deps: Deps, caller: CurrentCaller, locale: CurrentLocale
) -> Response:
    """Remove one line from the cart."""
    return _cart(await deps.interactor.remove_line_from_cart(caller, line_id, locale=locale))
