"""Disputes reach the order: `payments.dispute.opened.v1` / `.closed.v1` through the bus."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from libs.contracts.envelope import Envelope, Event
from libs.contracts.events import DisputeClosed, DisputeOpened
from services.orders.api import order_out
from services.orders.domain import Order
from services.orders.tables import DisputeRow
from tests.unit.orders.support import (
    DISPUTE_CLOSED,
    DISPUTE_DUE,
    DISPUTE_OPENED,
    OrdersHarness,
    dispute_closed,
    dispute_opened,
    prepare_in,
    principal_of,
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


async def dispute_rows(orders: OrdersHarness) -> list[DisputeRow]:
    async with orders.runtime.sessions() as session:
        return list((await session.scalars(select(DisputeRow))).all())


async def test_an_opened_dispute_shows_on_the_order_with_its_deadline(
    orders: OrdersHarness,
) -> None:
    order = await new_order(orders)
    opened = dispute_opened(order.id, 5000)

    await publish(orders, opened)

    [dispute] = (await shown(orders, order)).disputes
    assert (dispute.id, dispute.amount, dispute.currency, dispute.reason, dispute.status) == (
        opened.dispute_id,
        5000,
        "EUR",
        "fraudulent",
        "needs_response",
    )
    assert (dispute.evidence_due_by, dispute.opened_at, dispute.closed_at) == (
        DISPUTE_DUE,
        DISPUTE_OPENED,
        None,
    )
    assert orders.shared.bus.dead_letters == []


async def test_a_closed_dispute_shows_its_end(orders: OrdersHarness) -> None:
    order = await new_order(orders)
    opened = dispute_opened(order.id)

    await publish(orders, opened, dispute_closed(opened, "won"))

    [dispute] = (await shown(orders, order)).disputes
    assert (dispute.status, dispute.closed_at, dispute.opened_at) == (
        "won",
        DISPUTE_CLOSED,
        DISPUTE_OPENED,
    )
    out = order_out(await shown(orders, order)).model_dump(mode="json")
    assert out["disputes"][0]["closed_at"] == "2026-04-04T10:00:00Z"


async def test_a_redelivered_or_republished_dispute_changes_nothing(
    orders: OrdersHarness,
) -> None:
    order = await new_order(orders)
    opened = dispute_opened(order.id)
    closed = dispute_closed(opened)
    opened_envelope = Envelope.wrap(opened, producer="payments")
    closed_envelope = Envelope.wrap(closed, producer="payments")

    # The same deliveries twice (the inbox), then the same reports in new envelopes.
    await publish(orders, opened_envelope, opened_envelope, closed_envelope, closed_envelope)
    [before] = await dispute_rows(orders)
    await publish(orders, opened, closed)

    [after] = await dispute_rows(orders)
    assert (after.status, after.closed_at, after.updated_at) == (
        "lost",
        DISPUTE_CLOSED,
        before.updated_at,
    )
    assert len((await shown(orders, order)).disputes) == 1


async def test_an_opened_report_after_its_closed_one_never_reopens_it(
    orders: OrdersHarness,
) -> None:
    order = await new_order(orders)
    opened = dispute_opened(order.id)

    # Across retries the closed report may be handled first.
    await publish(orders, dispute_closed(opened, "lost"))
    await publish(orders, opened)

    [dispute] = (await shown(orders, order)).disputes
    assert (dispute.status, dispute.closed_at) == ("lost", DISPUTE_CLOSED)
    assert dispute.evidence_due_by == DISPUTE_DUE


async def test_a_second_closed_report_does_not_change_the_end(orders: OrdersHarness) -> None:
    order = await new_order(orders)
    opened = dispute_opened(order.id)

    await publish(orders, opened, dispute_closed(opened, "won"))
    later = dispute_closed(opened, "lost").model_copy(
        update={"closed_at": DISPUTE_CLOSED + timedelta(days=1)}
    )
    await publish(orders, later)

    [dispute] = (await shown(orders, order)).disputes
    assert (dispute.status, dispute.closed_at) == ("won", DISPUTE_CLOSED)


async def test_a_dispute_without_an_order_is_ignored(orders: OrdersHarness) -> None:
    opened = dispute_opened(None)

    await publish(orders, opened, dispute_closed(opened))

    assert await dispute_rows(orders) == []
    assert orders.shared.bus.dead_letters == []


async def test_a_dispute_before_its_order_is_kept_and_shows_once_it_exists(
    orders: OrdersHarness,
) -> None:
    price = orders.catalog.add_price(2000)
    body = prepare_in(user(), [(price, 1)])

    await publish(orders, dispute_opened(body.order_id, 2000))
    assert orders.shared.bus.dead_letters == []
    order, _ = await orders.service.prepare_order(order=body)

    assert [d.amount for d in (await shown(orders, order)).disputes] == [2000]


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


async def test_a_page_of_orders_loads_its_disputes_in_one_query(orders: OrdersHarness) -> None:
    owner = user()
    price = orders.catalog.add_price(800)
    created = [
        (await orders.service.prepare_order(order=prepare_in(owner, [(price, 1)])))[0]
        for _ in range(6)
    ]
    await publish(orders, *(dispute_opened(o.id, 100 + n) for n, o in enumerate(created)))

    counts = []
    for limit in (1, 5):
        with statements(orders) as seen:
            page, _ = await orders.service.get_user_orders(
                principal=principal_of(owner), limit=limit
            )
        assert len(page) == limit
        counts.append(len(seen))
        assert sum("order_disputes" in sql for sql in seen) == 1
    assert counts[0] == counts[1], "the number of queries does not grow with the page"
    page, _ = await orders.service.get_user_orders(principal=principal_of(owner))
    assert [[d.amount for d in o.disputes] for o in page] == [[100 + n] for n in reversed(range(6))]


async def test_the_contract_examples_are_consumed(orders: OrdersHarness) -> None:
    for model in (DisputeOpened, DisputeClosed):
        example = model.model_json_schema()["examples"][0]
        await publish(orders, Envelope(type=model.event_type, producer="payments", payload=example))
    rows = await dispute_rows(orders)
    # Both examples name one dispute: opened, then closed as lost.
    assert [(row.id, row.status, row.amount, row.closed_at is not None) for row in rows] == [
        ("3a1f9c2e-7b4d-4e8a-9c1f-2e7b4d8a9c1f", "lost", 2500, True)
    ]
    assert orders.shared.bus.dead_letters == []
    async with orders.runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(DisputeRow)) == 1
