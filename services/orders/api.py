"""HTTP routes of the orders service (internal: only the gateway calls them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from libs.contracts.common import Owner, Page, Principal
from libs.contracts.events import OrderLineRef
from libs.contracts.orders import (
    CancelOrderIn,
    OrderDisputeOut,
    OrderFulfillmentOut,
    OrderOut,
    OrderPaidFilter,
    OrderRefundOut,
    PrepareOrderIn,
)
from libs.runtime.auth import principal_or_none, require_service_token
from services.orders.domain import Order
from services.orders.fulfillments import fulfillment_status
from services.orders.renewals import renewal_of
from services.orders.service import OrdersService


def get_service(request: Request) -> OrdersService:
    service: OrdersService = request.app.state.orders.service
    return service


Service = Annotated[OrdersService, Depends(get_service)]


def get_principal(principal: Annotated[Principal | None, Depends(principal_or_none)]) -> Principal:
    """No principal reads as nobody: the service then answers 401 where it needs someone."""
    return principal or Principal()


Caller = Annotated[Principal, Depends(get_principal)]

router = APIRouter(tags=["orders"])


def order_out(order: Order) -> OrderOut:
    return OrderOut(
        id=order.id,
        number=order.number,
        currency=order.currency,
        total=order.total,
        status=order.status,
        paid=order.paid,
        canceled_at=order.canceled_at,
        created_at=order.created_at,
        details=dict(order.details),
        owner=Owner.model_validate(order.owner),
        customer_id=order.customer_id,
        backordered=order.backordered,
        refunded_amount=order.refunded_amount,
        refunds=[
            OrderRefundOut(
                id=refund.id,
                amount=refund.amount,
                status=refund.status,
                reason=refund.reason,
                created_at=refund.created_at,
            )
            for refund in order.refunds
        ],
        disputes=[
            OrderDisputeOut(
                id=dispute.id,
                amount=dispute.amount,
                currency=dispute.currency,
                reason=dispute.reason,
                status=dispute.status,
                evidence_due_by=dispute.evidence_due_by,
                opened_at=dispute.opened_at,
                closed_at=dispute.closed_at,
            )
            for dispute in order.disputes
        ],
        fulfillment_status=fulfillment_status(order),
        fulfillments=[
            OrderFulfillmentOut(
                id=fulfillment.id,
                carrier=fulfillment.carrier,
                tracking_number=fulfillment.tracking_number,
                tracking_url=fulfillment.tracking_url,
                lines=[
                    OrderLineRef(
                        pricing_id=line.pricing_id,
                        product_key=line.product_key,
                        name=line.name,
                        quantity=line.quantity,
                    )
                    for line in fulfillment.lines
                ],
                created_at=fulfillment.created_at,
            )
            for fulfillment in order.fulfillments
        ],
        renewal=renewal_of(order),
    )


@router.post(
    "/orders",
    response_model=OrderOut,
    status_code=201,
    dependencies=[Depends(require_service_token)],
    responses={200: {"model": OrderOut, "description": "The order already existed."}},
)
async def prepare_order(body: PrepareOrderIn, response: Response, service: Service) -> OrderOut:
    """Create the order of a frozen cart (idempotent by order id and by cart id)."""
    order, created = await service.prepare_order(order=body)
    response.status_code = 201 if created else 200
    return order_out(order)


@router.get("/orders", response_model=Page[OrderOut])
async def list_orders(
    service: Service,
    principal: Caller,
    paid: OrderPaidFilter | None = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[OrderOut]:
    """The caller's orders, newest first; `paid=paid|unpaid` filters."""
    orders, next_cursor = await service.get_user_orders(
        principal=principal, paid=paid, limit=limit, cursor=cursor
    )
    return Page[OrderOut](items=[order_out(order) for order in orders], next_cursor=next_cursor)


@router.get("/orders/{order_id}", response_model=OrderOut)
async def get_order(order_id: str, service: Service, principal: Caller) -> OrderOut:
    """One of the caller's orders."""
    return order_out(await service.get_order(principal=principal, order_id=order_id))


@router.post("/orders/{order_id}/cancel", response_model=OrderOut)
async def cancel_order(order_id: str, service: Service, principal: Caller) -> OrderOut:
    """Cancel one of the caller's unpaid orders."""
    return order_out(await service.cancel_order(order_id=order_id, principal=principal))


@router.post(
    "/admin/orders/{order_id}/cancel",
    response_model=OrderOut,
    dependencies=[Depends(require_service_token)],
)
async def cancel_order_as_operator(
    order_id: str, body: CancelOrderIn, service: Service
) -> OrderOut:
    """Cancel any unpaid order, for an operator (`actor`)."""
    return order_out(
        await service.cancel_order(
            order_id=order_id, principal=None, actor=body.actor, reason=body.reason
        )
    )
