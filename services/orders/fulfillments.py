"""Fulfilments: goods of a paid order handed to a carrier, with the shopper's tracking.

The plan is pure (`plan_fulfillment`, `fulfillment_status`); the repository keeps each
fulfilment as a row that never changes. `fulfil_order` writes one under a row lock on its
order (`SELECT … FOR UPDATE` on PostgreSQL; SQLite's writers queue up behind BEGIN IMMEDIATE),
so two operators shipping at once never ship more than was ordered, and records
`OrderFulfilled` in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.contracts.events import OrderFulfilled, OrderLineRef
from libs.contracts.orders import CreateFulfillmentIn, FulfillmentLineIn, FulfillmentStatus
from libs.runtime.problems import Conflict, InvalidInput
from libs.runtime.runtime import Runtime
from services.orders.domain import FulfilledLine, Fulfillment, Order, OrderNotFound
from services.orders.store import SqlOrderRepository
from services.orders.tables import FulfillmentRow

# --- errors ------------------------------------------------------------------------------------


class OrderNotPaid(Conflict):
    code, title = "order_not_paid", "The order is not paid"


class NothingToFulfil(Conflict):
    code, title = "nothing_to_fulfil", "Nothing in this order ships"


class FulfillmentExceedsOrder(Conflict):
    code, title = "fulfillment_exceeds_order", "More than was ordered"


# --- the plan (pure) ---------------------------------------------------------------------------


def shippable_lines(order: Order) -> dict[str, tuple[dict[str, Any], int]]:
    """The order's shippable lines by price: the line as bought and the quantity ordered."""
    found: dict[str, tuple[dict[str, Any], int]] = {}
    for line in order.details.get("lines", []):
        # Orders placed before lines recorded it count as not shippable.
        if line.get("shippable", False):
            kept, quantity = found.get(line["pricing_id"], (line, 0))
            found[line["pricing_id"]] = (kept, quantity + int(line["quantity"]))
    return found


def fulfilled_quantities(fulfillments: Sequence[Fulfillment]) -> dict[str, int]:
    done: dict[str, int] = {}
    for fulfillment in fulfillments:
        for line in fulfillment.lines:
            done[line.pricing_id] = done.get(line.pricing_id, 0) + line.quantity
    return done


def fulfillment_status(order: Order) -> FulfillmentStatus | None:
    """`fulfilled` once every shippable unit went, `partially_fulfilled` once some did; None
    when nothing in the order ships."""
    shippable = shippable_lines(order)
    if not shippable:
        return None
    done = fulfilled_quantities(order.fulfillments)
    if all(done.get(pricing_id, 0) >= quantity for pricing_id, (_, quantity) in shippable.items()):
        return "fulfilled"
    return "partially_fulfilled" if any(done.values()) else "unfulfilled"


def plan_fulfillment(
    order: Order, requested: Sequence[FulfillmentLineIn] | None
) -> tuple[FulfilledLine, ...]:
    """The lines one more fulfilment of `order` ships: those requested, or everything shippable
    not yet fulfilled; never more than the quantities ordered."""
    # A canceled order is never paid (ADR 020), so this refuses it too.
    if order.status != "paid":
        raise OrderNotPaid(f"Order {order.number} is {order.status}; only a paid order ships.")
    shippable = shippable_lines(order)
    if not shippable:
        raise NothingToFulfil(f"Order {order.number} has no shippable line.")
    done = fulfilled_quantities(order.fulfillments)
    remaining = {
        pricing_id: quantity - done.get(pricing_id, 0)
        for pricing_id, (_, quantity) in shippable.items()
    }
    if requested is None:
        wanted = {pricing_id: left for pricing_id, left in remaining.items() if left > 0}
        if not wanted:
            raise FulfillmentExceedsOrder(f"Everything in order {order.number} is fulfilled.")
    else:
        wanted = {}
        for index, line in enumerate(requested):
            if line.pricing_id not in shippable:
                raise InvalidInput.for_field(
                    f"lines[{index}].pricing_id", "not a shippable line of this order"
                )
            wanted[line.pricing_id] = wanted.get(line.pricing_id, 0) + line.quantity
        over = sorted(p for p, quantity in wanted.items() if quantity > remaining[p])
        if over:
            raise FulfillmentExceedsOrder(
                f"More than is left to ship of order {order.number}: "
                + ", ".join(
                    f"{shippable[p][0]['product_key']} ({max(remaining[p], 0)} left)" for p in over
                )
            )
    return tuple(
        FulfilledLine(
            pricing_id=pricing_id,
            product_key=shippable[pricing_id][0]["product_key"],
            name=shippable[pricing_id][0]["name"],
            quantity=quantity,
        )
        for pricing_id, quantity in wanted.items()
    )


# --- the repository ----------------------------------------------------------------------------


class FulfillmentRepository(Protocol):
    async def add(self, fulfillment: Fulfillment) -> None: ...

    async def for_orders(self, order_ids: Sequence[str]) -> dict[str, tuple[Fulfillment, ...]]: ...


class SqlFulfillmentRepository:
    """Fulfilments in the orders database, within the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, fulfillment: Fulfillment) -> None:
        table = cast(Table, FulfillmentRow.__table__)
        await self.session.execute(
            insert(table).values(
                id=fulfillment.id,
                order_id=fulfillment.order_id,
                carrier=fulfillment.carrier,
                tracking_number=fulfillment.tracking_number,
                tracking_url=fulfillment.tracking_url,
                lines=[_line_json(line) for line in fulfillment.lines],
                actor=fulfillment.actor,
                created_at=fulfillment.created_at,
            )
        )

    async def for_orders(self, order_ids: Sequence[str]) -> dict[str, tuple[Fulfillment, ...]]:
        """The fulfilments of a page of orders in one query, each order's oldest first."""
        if not order_ids:
            return {}
        rows = await self.session.scalars(
            select(FulfillmentRow)
            .where(FulfillmentRow.order_id.in_(list(order_ids)))
            .order_by(FulfillmentRow.order_id, FulfillmentRow.created_at, FulfillmentRow.id)
        )
        found: dict[str, list[Fulfillment]] = {}
        for row in rows:
            found.setdefault(row.order_id, []).append(_to_fulfillment(row))
        return {order_id: tuple(items) for order_id, items in found.items()}


def _line_json(line: FulfilledLine) -> dict[str, Any]:
    return {
        "pricing_id": line.pricing_id,
        "product_key": line.product_key,
        "name": line.name,
        "quantity": line.quantity,
    }


def _to_fulfillment(row: FulfillmentRow) -> Fulfillment:
    return Fulfillment(
        id=row.id,
        order_id=row.order_id,
        carrier=row.carrier,
        tracking_number=row.tracking_number,
        tracking_url=row.tracking_url,
        lines=tuple(FulfilledLine(**line) for line in row.lines),
        actor=row.actor,
        created_at=row.created_at,
    )


# --- the verb ----------------------------------------------------------------------------------


async def fulfil_order(
    runtime: Runtime,
    *,
    order_id: str,
    shipment: CreateFulfillmentIn,
    actor: str | None,
    clock: Callable[[], datetime],
) -> Order:
    """Record one fulfilment of a paid order and publish `OrderFulfilled`, atomically; the
    order with its fulfilments after it."""
    async with runtime.transaction() as session:
        # The lock serializes fulfilments of one order: each plans against the ones before it.
        order = await SqlOrderRepository(session).get_for_update(order_id)
        if order is None:
            raise OrderNotFound(f"No order {order_id}.")
        fulfillments = SqlFulfillmentRepository(session)
        before = (await fulfillments.for_orders([order.id])).get(order.id, ())
        order = replace(order, fulfillments=before)
        fulfillment = Fulfillment(
            id=str(uuid.uuid4()),
            order_id=order.id,
            carrier=shipment.carrier,
            tracking_number=shipment.tracking_number,
            tracking_url=shipment.tracking_url,
            lines=plan_fulfillment(order, shipment.lines),
            actor=actor,
            created_at=clock(),
        )
        await fulfillments.add(fulfillment)
        order = replace(order, fulfillments=(*before, fulfillment))
        status = fulfillment_status(order)
        assert status in ("partially_fulfilled", "fulfilled")
        await runtime.record(
            session,
            OrderFulfilled(
                order_id=order.id,
                number=order.number,
                owner=order.owner,
                fulfillment_id=fulfillment.id,
                carrier=fulfillment.carrier,
                tracking_number=fulfillment.tracking_number,
                tracking_url=fulfillment.tracking_url,
                lines=[OrderLineRef(**_line_json(line)) for line in fulfillment.lines],
                fulfillment_status=status,
                created_at=fulfillment.created_at,
                actor=actor,
            ),
            ordering_key=f"order:{order.id}",
        )
    return order
