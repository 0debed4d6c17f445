"""Routes of the orders service for operators: every order, by id or number, and fulfilments.

Only the gateway's admin API calls them (the service credential, as every service route);
it has checked the operator's role and passes the operator's name as the actor.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from libs.contracts.common import Page
from libs.contracts.orders import FulfilOrderIn, OrderOut, OrderStatus
from services.orders.api import Service, order_out

router = APIRouter(prefix="/admin", tags=["orders admin"])

OrderId = Annotated[str, Path(min_length=1, max_length=36)]


@router.get("/orders", response_model=Page[OrderOut])
async def list_all_orders(
    service: Service,
    status: OrderStatus | None = None,
    email: Annotated[str | None, Query(min_length=1, max_length=320)] = None,
    number: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[OrderOut]:
    """Every order, newest first; filtered by status, billing e-mail or number."""
    orders, next_cursor = await service.get_all_orders(
        status=status, email=email, number=number, limit=limit, cursor=cursor
    )
    return Page[OrderOut](items=[order_out(order) for order in orders], next_cursor=next_cursor)


@router.get("/orders/by-number/{number}", response_model=OrderOut)
async def get_order_by_number(
    number: Annotated[str, Path(min_length=1, max_length=32)], service: Service
) -> OrderOut:
    """Any order, by its number."""
    return order_out(await service.get_any_order(number=number))


@router.get("/orders/{order_id}", response_model=OrderOut)
async def get_any_order(order_id: OrderId, service: Service) -> OrderOut:
    """Any order, by its id."""
    return order_out(await service.get_any_order(order_id=order_id))


@router.post("/orders/{order_id}/fulfillments", response_model=OrderOut, status_code=201)
async def fulfil_order(order_id: OrderId, body: FulfilOrderIn, service: Service) -> OrderOut:
    """Ship goods of a paid order (all that is left when `lines` is left out); the order
    after it. 409 `order_not_paid`, `fulfillment_exceeds_order`, `nothing_to_fulfil`."""
    order = await service.fulfil_order(
        order_id=order_id,
        shipment=body,
        actor=body.actor,
    )
    return order_out(order)
