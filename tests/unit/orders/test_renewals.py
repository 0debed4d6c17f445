"""Renewals are orders: `payments.subscription.renewed.v1` through the bus makes one paid
order per invoice, in the shopper's history."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from libs.contracts.envelope import Envelope, Event
from libs.contracts.events import SubscriptionRenewed
from services.orders.api import order_out
from services.orders.domain import Order, OrderNotYetVisible
from services.orders.renewals import (
    plan_renewal,
    record_renewal,
    recurring_shipping,
    renewal_order_id,
)
from services.orders.tables import OrderRow, RenewalRow
from tests.unit.orders.support import (
    OrdersHarness,
    new_id,
    prepare_in,
    principal_of,
    running_orders,
    user,
)

RENEWED_AT = datetime(2026, 4, 1, 12, 0, 3, tzinfo=UTC)
PERIOD_END = datetime(2026, 5, 1, 12, tzinfo=UTC)


@pytest.fixture
async def orders(tmp_path: Path) -> AsyncIterator[OrdersHarness]:
    async with running_orders(tmp_path) as harness:
        yield harness


async def subscription_order(orders: OrdersHarness, *, ship: bool = False) -> Order:
    """A first order: a monthly 9.00 coffee (19 % exclusive) and a one-off 12.00 mug."""
    catalog = orders.catalog
    catalog.add_rate("19")
    coffee = catalog.add_price(900, interval="month", product_key="coffee", shippable=ship)
    mug = catalog.add_price(1200, product_key="mug", shippable=ship)
    if ship:
        catalog.add_shipping("standard", 490)
    order, _ = await orders.service.prepare_order(
        order=prepare_in(user(), [(coffee, 2), (mug, 1)], shipping="standard" if ship else None)
    )
    return order


def renewed(first: Order, amount: int, *, invoice: str | None = None, **extra: object) -> Event:
    return SubscriptionRenewed(
        subscription_id=str(extra.pop("subscription_id", "sub-1")),
        order_id=first.id,
        amount=amount,
        currency=str(extra.pop("currency", "eur")),
        current_period_end=PERIOD_END,
        invoice_reference=invoice or f"in_{new_id()[:12]}",
        billing_reason=str(extra.pop("billing_reason", "subscription_cycle")),
        renewed_at=RENEWED_AT,
    )


async def publish(orders: OrdersHarness, *events: Event | Envelope) -> None:
    await asyncio.gather(
        *(
            orders.shared.bus.publish(
                item if isinstance(item, Envelope) else Envelope.wrap(item, producer="payments")
            )
            for item in events
        )
    )
    await orders.settle()


async def history(orders: OrdersHarness, first: Order) -> list[Order]:
    page, _ = await orders.service.get_user_orders(principal=principal_of(first.owner), limit=50)
    return page


async def count(orders: OrdersHarness, table: type) -> int:
    async with orders.runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


# --- the plan ----------------------------------------------------------------------------------


async def test_the_plan_takes_the_recurring_lines_and_their_tax(orders: OrdersHarness) -> None:
    first = await subscription_order(orders)
    # 2 x 900 + 19 % = 2142 recur; the mug (1200 + 228) was billed once.
    assert first.total == 2142 + 1428

    plan = plan_renewal(first, renewed(first, 2142), order_id="o-1")  # type: ignore[arg-type]

    details = plan.details
    assert [line["product_key"] for line in details["lines"]] == ["coffee"]
    assert (details["subtotal"], details["tax"], details["total"]) == (1800, 342, 2142)
    [tax_line] = details["tax_lines"]
    assert (tax_line["taxable_amount"], tax_line["amount"]) == (1800, 342)
    assert details["billing"] == first.details["billing"] and details["shipping"] is None
    assert details["cart_id"] == "renewal:o-1"
    assert details["renewal"]["first_order_id"] == first.id
    assert details["renewal"]["amount_differs"] is False and "expected" not in details["renewal"]
    assert (plan.total, plan.currency) == (2142, "EUR")


async def test_a_subscription_to_goods_that_ship_pays_its_shipping_each_period(
    orders: OrdersHarness,
) -> None:
    first = await subscription_order(orders, ship=True)
    shipping = first.details["shipping"]
    assert shipping["total"] == 490 + 93  # 19 % on 4.90, exclusive

    plan = plan_renewal(first, renewed(first, 2142 + 583), order_id="o-2")  # type: ignore[arg-type]

    assert plan.details["shipping"] == shipping  # the first order's method and address
    assert (plan.details["tax"], plan.total, plan.amount_differs) == (342 + 93, 2725, False)
    [tax_line] = plan.details["tax_lines"]
    assert tax_line["amount"] == 342 + 93


def test_shipping_recurs_only_with_a_recurring_line_that_ships() -> None:
    shipping = {"method": {"code": "standard"}, "total": 583}
    digital = {"interval": "month", "shippable": False}
    goods = {"interval": "month", "shippable": True}
    mug = {"interval": None, "shippable": True}
    assert recurring_shipping({"lines": [digital, mug], "shipping": shipping}) is None
    assert recurring_shipping({"lines": [goods, mug], "shipping": shipping}) == shipping
    assert recurring_shipping({"lines": [goods], "shipping": None}) is None


# --- through the bus ---------------------------------------------------------------------------


async def test_a_paid_renewal_is_a_paid_order_in_the_shoppers_history(
    orders: OrdersHarness,
) -> None:
    first = await subscription_order(orders)
    event = renewed(first, 2142)

    await publish(orders, event)

    newest, oldest = await history(orders, first)
    assert oldest.id == first.id
    assert newest.id == renewal_order_id(event.invoice_reference)  # type: ignore[attr-defined]
    assert (newest.paid, newest.created_at) == (RENEWED_AT, RENEWED_AT)
    assert (newest.total, newest.currency, newest.owner) == (2142, "EUR", first.owner)
    assert newest.customer_id == first.customer_id and newest.number != first.number
    shown = order_out(newest)
    assert shown.renewal is not None
    assert (shown.renewal.subscription_id, shown.renewal.first_order_id) == ("sub-1", first.id)
    assert shown.renewal.period_end == PERIOD_END and shown.renewal.amount_differs is False
    assert order_out(first).renewal is None
    assert await orders.outbox_types() == [
        "orders.order.created.v1",
        "orders.order.created.v1",
        "orders.order.paid.v1",
    ]


async def test_one_order_per_invoice_however_often_and_concurrently_it_is_delivered(
    orders: OrdersHarness,
) -> None:
    first = await subscription_order(orders)
    event = renewed(first, 2142, invoice="in_once")
    envelope = Envelope.wrap(event, producer="payments")
    # The same message redelivered, and the same invoice announced again (a reconciliation
    # that found it too), at once.
    await publish(orders, envelope, envelope, event, event, event)

    assert len(await history(orders, first)) == 2
    assert await count(orders, RenewalRow) == 1
    assert (await orders.outbox_types()).count("orders.order.paid.v1") == 1

    # The next period is another invoice: another order, another paid event.
    await publish(orders, renewed(first, 2142, invoice="in_next"))
    assert len(await history(orders, first)) == 3
    assert (await orders.outbox_types()).count("orders.order.paid.v1") == 2


async def test_an_amount_that_differs_is_flagged_and_the_charge_is_the_total(
    orders: OrdersHarness,
) -> None:
    first = await subscription_order(orders)

    await publish(orders, renewed(first, 2500, billing_reason="subscription_update"))

    newest, _ = await history(orders, first)
    assert newest.total == 2500 and newest.details["total"] == 2500
    renewal = newest.details["renewal"]
    assert renewal["amount_differs"] is True
    assert renewal["expected"] == {"total": 2142, "currency": "EUR"}
    assert renewal["billing_reason"] == "subscription_update"
    assert order_out(newest).renewal.amount_differs is True  # type: ignore[union-attr]
    assert (await orders.outbox_types()).count("orders.order.paid.v1") == 1


async def test_a_renewal_before_its_first_order_fails_to_be_redelivered(
    orders: OrdersHarness,
) -> None:
    first = await subscription_order(orders)
    unknown = Order(**{**first.__dict__, "id": new_id()})
    with pytest.raises(OrderNotYetVisible):
        async with orders.runtime.transaction() as session:
            await record_renewal(
                runtime=orders.runtime,
                session=session,
                renewed=renewed(unknown, 2142),  # type: ignore[arg-type]
                now=RENEWED_AT,
            )
    assert await count(orders, RenewalRow) == 0
    assert await count(orders, OrderRow) == 1
