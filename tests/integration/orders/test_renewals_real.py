"""Renewal orders on real PostgreSQL and RabbitMQ: one paid order per invoice under racing and
repeated deliveries, and a renewal that overtook its first order waits for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from libs.contracts.envelope import Envelope
from libs.contracts.events import OrderPaid, SubscriptionRenewed
from libs.runtime.rabbit import RabbitBus
from services.orders.domain import Order
from services.orders.renewals import record_renewal, renewal_order_id
from services.orders.tables import OrderRow, RenewalRow
from tests.conftest import BusNames
from tests.integration.orders.test_orders_rabbitmq import eventually
from tests.integration.runtime.support import pending
from tests.unit.orders.support import (
    FakeCatalog,
    OrdersHarness,
    new_id,
    prepare_in,
    principal_of,
    running_orders,
    user,
)

pytestmark = pytest.mark.integration

RENEWED_AT = datetime(2026, 4, 1, 12, tzinfo=UTC)


@pytest.fixture
async def orders(tmp_path: Path, pg_database_url: str) -> AsyncIterator[OrdersHarness]:
    async with running_orders(tmp_path, catalog=FakeCatalog(), database_url=pg_database_url) as h:
        yield h


async def first_order(orders: OrdersHarness) -> Order:
    coffee = orders.catalog.add_price(900, interval="month", product_key="coffee")
    order, _ = await orders.service.prepare_order(order=prepare_in(user(), [(coffee, 1)]))
    return order


def renewal(order_id: str, invoice: str, amount: int = 900) -> SubscriptionRenewed:
    return SubscriptionRenewed(
        subscription_id="sub-" + order_id[:8],
        order_id=order_id,
        amount=amount,
        currency="EUR",
        invoice_reference=invoice,
        billing_reason="subscription_cycle",
        renewed_at=RENEWED_AT,
    )


async def count(orders: OrdersHarness, table: type) -> int:
    async with orders.runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def test_racing_transactions_of_one_invoice_make_one_paid_order(
    orders: OrdersHarness,
) -> None:
    first = await first_order(orders)
    event = renewal(first.id, f"in_{new_id()[:10]}")

    async def deliver() -> Order | None:
        async with orders.runtime.transaction() as session:
            return await record_renewal(
                runtime=orders.runtime, session=session, renewed=event, now=RENEWED_AT
            )

    made = await asyncio.gather(*(deliver() for _ in range(8)))

    assert len([order for order in made if order is not None]) == 1
    assert await count(orders, RenewalRow) == 1 and await count(orders, OrderRow) == 2
    assert (await orders.outbox_types()).count("orders.order.paid.v1") == 1


async def test_repeated_deliveries_through_the_bus_make_one_order_per_period(
    orders: OrdersHarness,
) -> None:
    first = await first_order(orders)
    april, may = renewal(first.id, "in_april"), renewal(first.id, "in_may", amount=1200)
    once = Envelope.wrap(april, producer="payments")
    await asyncio.gather(
        *(
            orders.shared.bus.publish(envelope)
            for envelope in (
                once,
                once,
                Envelope.wrap(april, producer="payments"),
                Envelope.wrap(may, producer="payments"),
                Envelope.wrap(may, producer="payments"),
            )
        )
    )
    await orders.settle()

    page, _ = await orders.service.get_user_orders(principal=principal_of(first.owner))
    renewals = [order for order in page if order.id != first.id]
    assert sorted(o.id for o in renewals) == sorted(
        [renewal_order_id("in_april"), renewal_order_id("in_may")]
    )
    assert all(order.paid == RENEWED_AT for order in renewals)
    flagged = {o.details["renewal"]["invoice_reference"]: o for o in renewals}
    assert flagged["in_may"].details["renewal"]["amount_differs"] is True
    assert flagged["in_may"].total == 1200
    assert flagged["in_april"].details["renewal"]["amount_differs"] is False
    assert (await orders.outbox_types()).count("orders.order.paid.v1") == 2
    assert orders.shared.bus.dead_letters == []


async def test_a_renewal_over_rabbitmq_waits_for_its_first_order_and_is_paid_once(
    tmp_path: Path, pg_database_url: str, bus_names: BusNames
) -> None:
    payments = RabbitBus(
        bus_names.url, exchange=bus_names.exchange, queue_prefix=bus_names.queue_prefix
    )
    await payments.start()
    try:
        await payments.declare_consumer_queues("orders", [SubscriptionRenewed.event_type])
        external = await payments.declare_consumer_queues("external", [OrderPaid.event_type])
        async with running_orders(
            tmp_path,
            database_url=pg_database_url,
            broker_url=bus_names.url,
            exchange=bus_names.exchange,
            queue_prefix=bus_names.queue_prefix,
            consumer_retry_ladder_ms=(10, 100, 1000),
            consumer_retry_budget_s=30,
        ) as orders:
            coffee = orders.catalog.add_price(900, interval="month")
            body = prepare_in(user(), [(coffee, 1)])
            event = Envelope.wrap(renewal(body.order_id, "in_early"), producer="payments")
            # Before its first order exists, and delivered twice.
            await payments.publish(event)
            await payments.publish(event)
            await orders.service.prepare_order(order=body)
            renewal_id = renewal_order_id("in_early")

            async def is_recorded() -> bool:
                page, _ = await orders.service.get_user_orders(principal=principal_of(body.owner))
                return renewal_id in [order.id for order in page]

            await eventually(is_recorded)

            async def all_published() -> bool:
                return await pending(orders.runtime) == 0

            await eventually(all_published)
            received = []
            while (message := await external.get(fail=False, timeout=5)) is not None:
                received.append(Envelope.from_bytes(message.body))
                await message.ack()
            assert [(e.type, e.payload["order_id"]) for e in received] == [
                (OrderPaid.event_type, renewal_id)
            ]
            assert received[0].payload["attempt_id"] is None
            assert received[0].payload["total"] == 900
    finally:
        await payments.stop()
