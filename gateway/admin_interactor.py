"""AdminInteractor: the operator's use cases, composed from the service clients.

Like StoreInteractor for the shop, it is the only place the admin API composes services. The
admin API has checked the caller's role; each use case names its `actor` so the services can
record who did what.
"""

from __future__ import annotations

import re
import uuid

import structlog

from gateway.clients import Clients
from libs.contracts.catalog import StockLevelOut, StockSetIn
from libs.contracts.common import Page, Principal
from libs.contracts.orders import (
    CreateFulfillmentIn,
    FulfilOrderIn,
    OrderOut,
    OrderStatus,
)
from libs.contracts.payments import OperatorRefundIn, RefundLineIn, RefundOut
from libs.contracts.store import AdminOrderOut, AdminRefundIn, AdminRefundOut

log = structlog.get_logger(__name__)

# An order number (`2027-000042`), as opposed to an order id (a UUID).
ORDER_NUMBER = re.compile(r"^\d{4}-\d{1,12}$")


def admin_refund_out(refund: RefundOut) -> AdminRefundOut:
    return AdminRefundOut(
        id=refund.id,
        amount=refund.amount,
        currency=refund.currency,
        status=refund.status,
        reason=refund.reason,
        note=refund.note,
        actor=refund.actor,
        created_at=refund.created_at,
    )


class AdminInteractor:
    """Orders seen and worked on by an operator: every order, any order, refunds, fulfilments."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    async def list_orders(
        self,
        *,
        status: OrderStatus | None,
        email: str | None,
        number: str | None,
        limit: int | None,
        cursor: str | None,
    ) -> Page[OrderOut]:
        """Every order, newest first, filtered."""
        return await self.clients.orders.list_all_orders(
            status=status, email=email, number=number, limit=limit, cursor=cursor
        )

    async def get_order(self, order: str) -> AdminOrderOut:
        """Any order, by id or number, with every attempt to pay it."""
        orders = self.clients.orders
        found = (
            await orders.get_order_by_number(order)
            if ORDER_NUMBER.match(order)
            else await orders.get_any_order(order)
        )
        attempts = await self.clients.payments.order_payments(Principal(), found.id)
        return AdminOrderOut(**found.model_dump(), payments=attempts)

    async def cancel_order(self, order_id: str, *, actor: str, reason: str | None) -> OrderOut:
        """Cancel any unpaid order (its stock is released, its checkouts closed)."""
        return await self.clients.orders.cancel_order_as_operator(
            order_id, actor=actor, reason=reason
        )

    async def fulfil_order(
        self, order_id: str, body: CreateFulfillmentIn, *, actor: str
    ) -> OrderOut:
        """Ship goods of a paid order with the carrier's tracking; the order after it."""
        order = await self.clients.orders.fulfil_order(
            order_id, FulfilOrderIn(**body.model_dump(), actor=actor)
        )
        log.info(
            "admin.order_fulfilled",
            actor=actor,
            order_id=order.id,
            fulfillment_status=order.fulfillment_status,
        )
        return order

    async def refund_order(
        self, *, actor: str, order_id: str, body: AdminRefundIn, idempotency_key: str | None
    ) -> AdminRefundOut:
        """Refund part or all of a paid order; payments decides, under the order's lock."""
        refund = await self.clients.payments.refund_order(
            order_id,
            OperatorRefundIn(
                amount=body.amount,
                reason=body.reason,
                lines=[
                    RefundLineIn(pricing_id=x.pricing_id, quantity=x.quantity) for x in body.lines
                ]
                if body.lines
                else None,
                # The caller's key goes down too: payments dedupes even once the gateway's
                # replay store has forgotten it. Without one, every request is a new refund.
                idempotency_key=idempotency_key or f"gateway-{uuid.uuid4()}",
                actor=actor,
            ),
        )
        return admin_refund_out(refund)

    async def get_stock(self, key: str) -> StockLevelOut:
        """A product's stock: on hand, reserved, available."""
        return await self.clients.catalog.get_stock(key)

    async def set_stock(
        self, *, actor: str, key: str, on_hand: int, tracked: bool = True
    ) -> StockLevelOut:
        """Set a product's units on hand; the operator goes into `catalog.stock.changed.v1`."""
        body = StockSetIn(on_hand=on_hand, tracked=tracked, actor=actor)
        level = await self.clients.catalog.set_stock(key, body)
        log.info("admin.stock_set", actor=actor, product_key=key, on_hand=on_hand)
        return level
