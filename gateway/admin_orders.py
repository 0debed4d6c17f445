"""`/api/admin/orders`: every order, any order in full, and its fulfilments (the operator's)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from gateway.deps import CurrentAdmin, Deps
from gateway.idempotency import AdminIdempotent
from libs.contracts.common import ID_PATTERN, Page
from libs.contracts.orders import CreateFulfillmentIn, OrderOut, OrderStatus
from libs.contracts.store import AdminOrderOut

router = APIRouter(prefix="/orders")

OrderKey = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=ID_PATTERN,
        description="The order's id, or its number.",
    ),
]
OrderId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN)]


@router.get("", response_model=Page[OrderOut])
async def list_orders(
    deps: Deps,
    status: OrderStatus | None = None,
    email: Annotated[
        str | None, Query(min_length=1, max_length=320, description="Billing e-mail.")
    ] = None,
    number: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    limit: Annotated[int | None, Query(ge=1, le=100)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[OrderOut]:
    """Every order, newest first; filter by `status`, billing `email` or `number`."""
    return await deps.admin.list_orders(
        status=status, email=email, number=number, limit=limit, cursor=cursor
    )


@router.get("/{order}", response_model=AdminOrderOut)
async def get_order(order: OrderKey, deps: Deps) -> AdminOrderOut:
    """Any order by id or number: refunds, disputes, fulfilments and its payment attempts."""
    return await deps.admin.get_order(order)


@router.post(
    "/{order_id}/fulfillments",
    response_model=OrderOut,
    status_code=201,
    dependencies=[AdminIdempotent],
)
async def create_fulfillment(
    order_id: OrderId, body: CreateFulfillmentIn, admin: CurrentAdmin, deps: Deps
) -> OrderOut:
    """Ship goods of a paid order (without `lines`: all that is left) with the carrier's
    tracking; the order after it. 409 `order_not_paid`, `fulfillment_exceeds_order`,
    `nothing_to_fulfil`; a `tracking_url` must be https."""
    return await deps.admin.fulfil_order(order_id, body, actor=admin.actor)
