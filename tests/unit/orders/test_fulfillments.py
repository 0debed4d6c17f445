"""Fulfilments of the orders service on its own SQLite database: the plan, the quantities that
never exceed the order (also when racing), the event, and the operator's reads."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from libs.contracts.envelope import Envelope
from libs.contracts.events import PaymentSucceeded
from libs.contracts.orders import CreateFulfillmentIn, FulfillmentLineIn
from libs.runtime.problems import InvalidInput
from services.orders.domain import Order, OrderNotFound
from services.orders.fulfillments import (
    FulfillmentExceedsOrder,
    NothingToFulfil,
    OrderNotPaid,
)
from tests.unit.orders.support import OrdersHarness, prepare_in, running_orders, user


@pytest.fixture
async def orders(tmp_path: Path) -> AsyncIterator[OrdersHarness]:
    async with running_orders(tmp_path) as harness:
        yield harness


def shipment(lines: list[tuple[str, int]] | None = None, **extra: str) -> CreateFulfillmentIn:
    return CreateFulfillmentIn(
        carrier=extra.get("carrier", "DHL"),
        tracking_number=extra.get("tracking_number", "00340434161234567890"),
        tracking_url=extra.get("tracking_url", "https://track.example/00340434161234567890"),
        lines=None
        if lines is None
        else [FulfillmentLineIn(pricing_id=p, quantity=q) for p, q in lines],
    )


async def paid_order(
    orders: OrdersHarness, *, mugs: int = 3, pay: bool = True
) -> tuple[Order, str, str]:
    mug = orders.catalog.add_price(1200, product_key="mug", shippable=True)
    course = orders.catalog.add_price(5000, product_key="course")
    standard = orders.catalog.add_shipping("standard", 490)
    order, _ = await orders.service.prepare_order(
        order=prepare_in(user(), [(mug, mugs), (course, 1)], shipping=standard)
    )
    if pay:
        paid = PaymentSucceeded(
            attempt_id=str(uuid.uuid4()),
            order_id=order.id,
            amount=order.total,
            currency="EUR",
            provider="dev",
            succeeded_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
        )
        await orders.shared.bus.publish(Envelope.wrap(paid, producer="payments"))
        await orders.settle()
    return order, mug, course


async def fulfilled_events(orders: OrdersHarness) -> list[dict[str, object]]:
    outbox = orders.runtime.outbox
    async with orders.runtime.sessions() as session:
        rows = await session.execute(
            select(outbox.c.envelope)
            .where(outbox.c.type == "orders.order.fulfilled.v1")
            .order_by(outbox.c.id)
        )
        return [row[0]["payload"] for row in rows]


async def test_a_partial_then_the_rest_fulfils_the_order_with_one_event_each(
    orders: OrdersHarness,
) -> None:
    order, mug, _ = await paid_order(orders)
    assert (await orders.service.get_any_order(order_id=order.id)).fulfillments == ()

    first = await orders.service.fulfil_order(
        order_id=order.id, shipment=shipment([(mug, 1)]), actor="ops@shop"
    )
    rest = await orders.service.fulfil_order(
        order_id=order.id, shipment=shipment(tracking_number="2"), actor="ops@shop"
    )

    from services.orders.fulfillments import fulfillment_status

    assert fulfillment_status(first) == "partially_fulfilled"
    assert fulfillment_status(rest) == "fulfilled"
    assert [[(line.product_key, line.quantity) for line in f.lines] for f in rest.fulfillments] == [
        [("mug", 1)],
        [("mug", 2)],
    ]
    events = await fulfilled_events(orders)
    assert [(e["fulfillment_status"], e["actor"]) for e in events] == [
        ("partially_fulfilled", "ops@shop"),
        ("fulfilled", "ops@shop"),
    ]
    assert events[0]["tracking_url"] == "https://track.example/00340434161234567890"
    assert events[0]["lines"] == [
        {
            "pricing_id": mug,
            "product_key": "mug",
            "name": events[0]["lines"][0]["name"],
            "quantity": 1,
        }  # type: ignore[index]
    ]
    with pytest.raises(FulfillmentExceedsOrder):
        await orders.service.fulfil_order(order_id=order.id, shipment=shipment(), actor=None)
    with pytest.raises(FulfillmentExceedsOrder):
        await orders.service.fulfil_order(
            order_id=order.id, shipment=shipment([(mug, 1)]), actor=None
        )
    assert len(await fulfilled_events(orders)) == 2


async def test_refusals_change_nothing(orders: OrdersHarness) -> None:
    unpaid, mug, course = await paid_order(orders, pay=False)
    with pytest.raises(OrderNotPaid):
        await orders.service.fulfil_order(order_id=unpaid.id, shipment=shipment(), actor=None)
    order, mug, course = await paid_order(orders)
    with pytest.raises(FulfillmentExceedsOrder):
        await orders.service.fulfil_order(
            order_id=order.id, shipment=shipment([(mug, 4)]), actor=None
        )
    with pytest.raises(FulfillmentExceedsOrder):
        # Two lines of one price add up.
        await orders.service.fulfil_order(
            order_id=order.id, shipment=shipment([(mug, 2), (mug, 2)]), actor=None
        )
    with pytest.raises(InvalidInput):
        await orders.service.fulfil_order(
            order_id=order.id, shipment=shipment([(course, 1)]), actor=None
        )
    with pytest.raises(OrderNotFound):
        await orders.service.fulfil_order(order_id="nope", shipment=shipment(), actor=None)
    assert (await orders.service.get_any_order(order_id=order.id)).fulfillments == ()
    assert await fulfilled_events(orders) == []


async def test_an_order_that_ships_nothing_has_no_fulfilment(orders: OrdersHarness) -> None:
    course = orders.catalog.add_price(5000, product_key="course")
    order, _ = await orders.service.prepare_order(order=prepare_in(user(), [(course, 1)]))
    paid = PaymentSucceeded(
        attempt_id="a-1",
        order_id=order.id,
        amount=order.total,
        currency="EUR",
        provider="dev",
        succeeded_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
    )
    await orders.shared.bus.publish(Envelope.wrap(paid, producer="payments"))
    await orders.settle()
    with pytest.raises(NothingToFulfil):
        await orders.service.fulfil_order(order_id=order.id, shipment=shipment(), actor=None)


async def test_racing_fulfilments_never_exceed_the_order(orders: OrdersHarness) -> None:
    order, mug, _ = await paid_order(orders, mugs=5)
    results = await asyncio.gather(
        *(
            orders.service.fulfil_order(
                order_id=order.id, shipment=shipment([(mug, 1)]), actor=None
            )
            for _ in range(8)
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(r, Order) for r in results) == 5
    assert all(isinstance(r, Order | FulfillmentExceedsOrder) for r in results), results
    final = await orders.service.get_any_order(order_id=order.id)
    assert sum(line.quantity for f in final.fulfillments for line in f.lines) == 5


async def test_operators_list_every_order_newest_first_and_find_one(
    orders: OrdersHarness,
) -> None:
    unpaid, _, _ = await paid_order(orders, pay=False)
    paid, _, _ = await paid_order(orders)

    page, cursor = await orders.service.get_all_orders(limit=1)
    assert [o.id for o in page] == [paid.id] and cursor is not None
    after, end = await orders.service.get_all_orders(limit=1, cursor=cursor)
    assert [o.id for o in after] == [unpaid.id] and end is None
    assert [o.id for o in (await orders.service.get_all_orders(status="paid"))[0]] == [paid.id]
    assert [o.id for o in (await orders.service.get_all_orders(status="pending"))[0]] == [unpaid.id]
    assert (await orders.service.get_all_orders(status="canceled"))[0] == []
    await orders.service.cancel_order(order_id=unpaid.id, principal=None, actor="ops")
    canceled = (await orders.service.get_all_orders(status="canceled"))[0]
    assert [o.id for o in canceled] == [unpaid.id]
    assert (await orders.service.get_all_orders(status="pending"))[0] == []
    with pytest.raises(OrderNotPaid):
        await orders.service.fulfil_order(order_id=unpaid.id, shipment=shipment(), actor=None)
    by_email = (await orders.service.get_all_orders(email="ADA@example.com"))[0]
    assert [o.id for o in by_email] == [paid.id, unpaid.id]
    assert (await orders.service.get_all_orders(email="eve@example.com"))[0] == []
    by_number = (await orders.service.get_all_orders(number=paid.number))[0]
    assert [o.id for o in by_number] == [paid.id]
    assert (await orders.service.get_all_orders(number="2099-999999"))[0] == []
    assert (await orders.service.get_any_order(number=paid.number)).id == paid.id


@pytest.mark.parametrize(
    "url",
    [
        "http://track.example/1",
        "javascript:alert(1)",
        "//track.example/1",
        "https:///x",
        'https://track.example/"><script>',
    ],
)
def test_a_tracking_link_is_https_only(url: str) -> None:
    with pytest.raises(ValidationError):
        shipment(tracking_url=url)


def test_carrier_and_tracking_number_are_not_blank() -> None:
    with pytest.raises(ValidationError):
        shipment(carrier="  ")
    with pytest.raises(ValidationError):
        shipment(tracking_number="a\nb")
