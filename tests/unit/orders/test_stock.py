"""Paid → sale: marking an order paid commits its stock reservation at catalog; lines catalog
could not cover make the order `backordered`, with one event, however often the payment comes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from libs.contracts.envelope import Envelope
from tests.unit.orders.support import OrdersHarness, prepare_in, principal_of, running_orders, user
from tests.unit.orders.test_service import payment


@pytest.fixture
async def orders(tmp_path: Path) -> AsyncIterator[OrdersHarness]:
    async with running_orders(tmp_path) as harness:
        yield harness


async def backordered_events(orders: OrdersHarness) -> list[dict[str, object]]:
    outbox = orders.runtime.outbox
    async with orders.runtime.sessions() as session:
        rows = await session.execute(
            select(outbox.c.envelope).where(outbox.c.type == "orders.order.backordered.v1")
        )
        return [row[0]["payload"] for row in rows]


async def test_paid_commits_the_reservation_and_nothing_is_backordered(
    orders: OrdersHarness,
) -> None:
    mug = orders.catalog.add_price(1200, product_key="mug")
    order, _ = await orders.service.prepare_order(order=prepare_in(user(), [(mug, 2)]))
    await orders.shared.bus.publish(Envelope.wrap(payment(order.id, order.total), producer="p"))
    await orders.settle()

    paid = await orders.service.get_order(principal=principal_of(order.owner), order_id=order.id)
    assert paid.paid is not None and paid.backordered is False
    assert orders.catalog.commits == [order.id]
    assert await backordered_events(orders) == []


async def test_a_backorder_flags_the_order_and_is_announced_once(orders: OrdersHarness) -> None:
    mug = orders.catalog.add_price(1200, product_key="mug")
    order, _ = await orders.service.prepare_order(order=prepare_in(user(), [(mug, 2)]))
    orders.catalog.backorders[order.id] = [("mug", 1)]
    orders.catalog.commit_failures = 1  # catalog down once: the payment is redelivered
    succeeded = payment(order.id, order.total)
    for _ in range(2):  # and the provider reports it twice
        await orders.shared.bus.publish(Envelope.wrap(succeeded, producer="payments"))
    await orders.settle()

    paid = await orders.service.get_order(principal=principal_of(order.owner), order_id=order.id)
    assert paid.paid is not None and paid.backordered is True
    [event] = await backordered_events(orders)
    assert event["order_id"] == order.id
    assert event["lines"] == [{"product_key": "mug", "quantity": 1}]
    assert orders.shared.bus.dead_letters == []
    types = await orders.outbox_types()
    assert types.count("orders.order.paid.v1") == 1
