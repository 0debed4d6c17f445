"""Payment succeeded → order paid → OrderPaid, through real RabbitMQ and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from libs.contracts.envelope import Envelope
from libs.contracts.events import OrderPaid, PaymentSucceeded
from libs.runtime.delivery import RetryPolicy
from libs.runtime.observability import metrics
from libs.runtime.rabbit import RabbitBus
from tests.conftest import BusNames
from tests.integration.runtime.support import pending
from tests.unit.orders.support import prepare_in, principal_of, running_orders, user

pytestmark = pytest.mark.integration


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 20) -> None:
    """Wait for something the bus does in the background (a generous bound, not a timing)."""
    for _ in range(int(within_s / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not true within {within_s}s")


def consumed(event_type: str) -> float:
    return metrics.events_consumed.labels(consumer="orders", type=event_type)._value.get()


async def test_order_paid_reaches_an_external_consumer_exactly_once(
    tmp_path: Path, pg_database_url: str, bus_names: BusNames
) -> None:
    payments = RabbitBus(
        bus_names.url,
        exchange=bus_names.exchange,
        queue_prefix=bus_names.queue_prefix,
        retry=RetryPolicy(ladder_ms=(50,), budget_ms=150),
    )
    await payments.start()
    try:
        # Queues exist (and are bound) before anything is published, as in a deployment.
        await payments.declare_consumer_queues("orders", [PaymentSucceeded.event_type])
        external = await payments.declare_consumer_queues("external", [OrderPaid.event_type])
        async with running_orders(
            tmp_path,
            database_url=pg_database_url,
            broker_url=bus_names.url,
            exchange=bus_names.exchange,
            queue_prefix=bus_names.queue_prefix,
        ) as orders:
            mug = orders.catalog.add_price(2500)
            order, _ = await orders.service.prepare_order(order=prepare_in(user(), [(mug, 2)]))
            before = consumed(PaymentSucceeded.event_type)

            def succeeded(attempt_id: str) -> Envelope:
                return Envelope.wrap(
                    PaymentSucceeded(
                        attempt_id=attempt_id,
                        order_id=order.id,
                        amount=order.total,
                        currency=order.currency,
                        provider="dev",
                        succeeded_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
                    ),
                    producer="payments",
                )

            first = succeeded("attempt-1")
            # The same event twice (a redelivery) and a second success of another attempt.
            for envelope in (first, first, succeeded("attempt-2")):
                await payments.publish(envelope)

            async def all_handled() -> bool:
                return consumed(PaymentSucceeded.event_type) - before >= 3

            await eventually(all_handled)

            # Not `relay.drain()`: it skips the rows the running relay has locked for its batch
            # (SKIP LOCKED, so replicas share the work), and returns while that batch's publish
            # still waits for its confirm. A row is marked published only after the broker
            # confirmed it into the queues: once none is left, every OrderPaid the three
            # deliveries recorded is in `external`, a duplicate included.
            async def all_published() -> bool:
                return await pending(orders.runtime) == 0

            await eventually(all_published)

            paid = await orders.service.get_order(
                principal=principal_of(order.owner), order_id=order.id
            )
            assert paid.paid == datetime(2026, 3, 2, 9, tzinfo=UTC)

            received = []
            while (message := await external.get(fail=False, timeout=5)) is not None:
                received.append(Envelope.from_bytes(message.body))
                await message.ack()
            assert [(e.type, e.payload["order_id"]) for e in received] == [
                (OrderPaid.event_type, order.id)
            ]
            assert received[0].payload["number"] == order.number
            assert received[0].payload["total"] == 5000
            assert received[0].producer == "orders"
    finally:
        await payments.stop()


async def test_an_early_payment_waits_for_its_order(
    tmp_path: Path, pg_database_url: str, bus_names: BusNames
) -> None:
    payments = RabbitBus(
        bus_names.url, exchange=bus_names.exchange, queue_prefix=bus_names.queue_prefix
    )
    await payments.start()
    try:
        await payments.declare_consumer_queues("orders", [PaymentSucceeded.event_type])
        async with running_orders(
            tmp_path,
            database_url=pg_database_url,
            broker_url=bus_names.url,
            exchange=bus_names.exchange,
            queue_prefix=bus_names.queue_prefix,
            # outlasts a slow prepare
            consumer_retry_ladder_ms=(10, 100, 1000),
            consumer_retry_budget_s=30,
        ) as orders:
            mug = orders.catalog.add_price(900)
            body = prepare_in(user(), [(mug, 1)])
            await payments.publish(
                Envelope.wrap(
                    PaymentSucceeded(
                        attempt_id=str(uuid.uuid4()),
                        order_id=body.order_id,
                        amount=900,
                        currency="EUR",
                        provider="dev",
                        succeeded_at=datetime.now(UTC),
                    ),
                    producer="payments",
                )
            )
            await orders.service.prepare_order(order=body)

            async def is_paid() -> bool:
                order = await orders.service.get_order(
                    principal=principal_of(body.owner), order_id=body.order_id
                )
                return order.paid is not None

            await eventually(is_paid)
    finally:
        await payments.stop()
