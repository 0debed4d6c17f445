"""Refunds reach the order: `payments.refund.succeeded.v1` / `.failed.v1` through the bus."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from libs.contracts.envelope import Envelope, Event
from libs.contracts.events import RefundFailed, RefundSucceeded
from services.orders.domain import Order, refunded_amount, reported_refund
from services.orders.tables import RefundRow
from tests.unit.orders.support import (
    REFUND_DECIDED,
    OrdersHarness,
    prepare_in,
    principal_of,
    refund_failed,
    refund_succeeded,
    running_orders,
    user,
)


@pytest.fixture
async def orders(tmp_path: Path) -> AsyncIterator[OrdersHarness]:
    async with running_orders(tmp_path) as harness:
        yield harness


async def new_order(orders: OrdersHarness, total: int = 5000) -> Order:
    price = orders.catalog.add_price(total)
    order, _ = await orders.service.prepare_order(order=prepare_in(user(), [(price, 1)]))
    return order


async def publish(orders: OrdersHarness, *events: Event | Envelope) -> None:
    for item in events:
        envelope = item if isinstance(item, Envelope) else Envelope.wrap(item, producer="payments")
        await orders.shared.bus.publish(envelope)
    await orders.settle()


async def shown(orders: OrdersHarness, order: Order) -> Order:
    return await orders.service.get_order(principal=principal_of(order.owner), order_id=order.id)


async def refund_rows(orders: OrdersHarness) -> int:
    async with orders.runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(RefundRow)) or 0)


def test_canceled_reads_as_failed_and_only_succeeded_refunds_in_the_currency_count() -> None:
    order_id = "order-1"
    refunds = [
        reported_refund(refund_succeeded(order_id, 1000)),
        reported_refund(refund_succeeded(order_id, 1, currency="usd")),
        reported_refund(refund_failed(order_id, 500, status="canceled")),
        reported_refund(refund_succeeded(order_id, 2**53 + 1)),  # exact past a float's reach
    ]
    assert [r.status for r in refunds] == ["succeeded", "succeeded", "failed", "succeeded"]
    assert refunds[1].currency == "USD"
    assert refunded_amount("EUR", refunds) == 1000 + 2**53 + 1
    assert refunded_amount("EUR", []) == 0


async def test_a_succeeded_refund_shows_on_the_order(orders: OrdersHarness) -> None:
    order = await new_order(orders)
    refund = refund_succeeded(order.id, 1250)

    await publish(orders, refund)

    seen = await shown(orders, order)
    assert seen.refunded_amount == 1250
    [kept] = seen.refunds
    assert (kept.id, kept.amount, kept.status, kept.reason) == (
        refund.refund_id,
        1250,
        "succeeded",
        "operator",
    )
    assert kept.created_at == REFUND_DECIDED
    assert orders.shared.bus.dead_letters == []


async def test_a_redelivered_or_republished_refund_counts_once(orders: OrdersHarness) -> None:
    order = await new_order(orders)
    refund = refund_succeeded(order.id, 1000)
    envelope = Envelope.wrap(refund, producer="payments")

    # The same delivery twice (the inbox), then the same refund in a new envelope (its id).
    await publish(orders, envelope, envelope)
    await publish(orders, refund)

    seen = await shown(orders, order)
    assert seen.refunded_amount == 1000
    assert [r.id for r in seen.refunds] == [refund.refund_id]
    assert await refund_rows(orders) == 1


async def test_two_partial_refunds_add_up_and_a_failed_one_counts_nothing(
    orders: OrdersHarness,
) -> None:
    order = await new_order(orders, total=9999)

    await publish(
        orders,
        refund_succeeded(order.id, 3333),
        refund_failed(order.id, 5000),
        refund_succeeded(order.id, 4567),
    )

    seen = await shown(orders, order)
    assert seen.refunded_amount == 3333 + 4567
    assert sorted((r.amount, r.status) for r in seen.refunds) == [
        (3333, "succeeded"),
        (4567, "succeeded"),
        (5000, "failed"),
    ]


async def test_a_failed_report_after_succeeded_does_not_undo_it(orders: OrdersHarness) -> None:
    order = await new_order(orders)
    refund_id = "re-" + order.id

    await publish(orders, refund_succeeded(order.id, 700, refund_id=refund_id))
    await publish(orders, refund_failed(order.id, 700, refund_id=refund_id))

    seen = await shown(orders, order)
    assert [(r.id, r.status) for r in seen.refunds] == [(refund_id, "succeeded")]
    assert seen.refunded_amount == 700
    assert orders.shared.bus.dead_letters == []


async def test_a_succeeded_report_after_failed_does_not_count(orders: OrdersHarness) -> None:
    order = await new_order(orders)
    refund_id = "re-" + order.id

    await publish(orders, refund_failed(order.id, 700, refund_id=refund_id, status="canceled"))
    await publish(orders, refund_succeeded(order.id, 700, refund_id=refund_id))

    seen = await shown(orders, order)
    assert [(r.id, r.status) for r in seen.refunds] == [(refund_id, "failed")]
    assert seen.refunded_amount == 0


async def test_a_refund_before_its_order_is_kept_and_shows_once_it_exists(
    orders: OrdersHarness,
) -> None:
    price = orders.catalog.add_price(2000)
    body = prepare_in(user(), [(price, 1)])

    await publish(orders, refund_succeeded(body.order_id, 2000))
    assert orders.shared.bus.dead_letters == []
    order, _ = await orders.service.prepare_order(order=body)

    assert (await shown(orders, order)).refunded_amount == 2000
    page, _ = await orders.service.get_user_orders(principal=principal_of(order.owner))
    assert [o.refunded_amount for o in page] == [2000]


@contextmanager
def statements(orders: OrdersHarness) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        sql = args[2]
        if sql.startswith("SELECT") and "outbox" not in sql:  # the relay polls on its own
            seen.append(sql)

    engine = orders.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_a_page_of_orders_loads_its_refunds_in_one_query(orders: OrdersHarness) -> None:
    owner = user()
    price = orders.catalog.add_price(800)
    created = [
        (await orders.service.prepare_order(order=prepare_in(owner, [(price, 1)])))[0]
        for _ in range(6)
    ]
    await publish(orders, *(refund_succeeded(o.id, 100 + n) for n, o in enumerate(created)))

    counts = []
    for limit in (1, 5):
        with statements(orders) as seen:
            page, _ = await orders.service.get_user_orders(
                principal=principal_of(owner), limit=limit
            )
        assert len(page) == limit
        counts.append(len(seen))
        assert sum("order_refunds" in sql for sql in seen) == 1
    assert counts[0] == counts[1], "the number of queries does not grow with the page"
    page, _ = await orders.service.get_user_orders(principal=principal_of(owner))
    assert [o.refunded_amount for o in page] == [100 + n for n in reversed(range(6))]


async def test_the_contract_examples_are_consumed(orders: OrdersHarness) -> None:
    for model in (RefundSucceeded, RefundFailed):
        example = model.model_json_schema()["examples"][0]
        await publish(orders, Envelope(type=model.event_type, producer="payments", payload=example))
    async with orders.runtime.sessions() as session:
        rows = (await session.scalars(select(RefundRow))).all()
    # Both examples name one refund: the first report (succeeded) is the one kept.
    assert [(row.id, row.status, row.amount) for row in rows] == [
        ("5f0c7a7e-3f57-4a43-9d56-3c1f6a1f5d10", "succeeded", 2500)
    ]
    assert orders.shared.bus.dead_letters == []
