"""AdminInteractor: the operator's use cases, composed from the service clients.

Like StoreInteractor for the shop, it is the only place the admin API composes services. The
admin API has checked the caller's role; each use case names its `actor` so the services can
record who did what.
"""

from __future__ import annotations

import re

import structlog

from gateway.clients import Clients
from libs.contracts.common import Page, Principal
from libs.contracts.orders import (
    CreateFulfillmentIn,
    FulfilOrderIn,
    OrderOut,
    OrderStatus,
)
from libs.contracts.store import AdminOrderOut

log = structlog.get_logger(__name__)

# An order number (`2027-000042`), as opposed to an order id (a UUID).
ORDER_NUMBER = re.compile(r"^\d{4}-\d{1,12}$")


class AdminInteractor:
    """Orders seen and worked on by an operator: every order, any order, fulfilments."""

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
