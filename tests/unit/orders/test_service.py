"""OrdersService on SQLite with a fake catalog and the in-process bus."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError

from libs.contracts.common import Principal
from libs.contracts.envelope import Envelope
from libs.contracts.events import AnonymousMerged, PaymentSucceeded
from libs.runtime.problems import Unauthorized
from services.orders.domain import (
    OrderAlreadyPaid,
    OrderIdConflict,
    OrderIsCanceled,
    OrderNotFound,
    PricingUnavailable,
)
from services.orders.tables import ImmutableOrderError, OrderRow
from tests.unit.orders.support import (
    FakeCatalog,
    OrdersHarness,
    anonymous,
    prepare_in,
    principal_of,
    running_orders,
    user,
)


@pytest.fixture
async def orders(tmp_path: Path) -> AsyncIterator[OrdersHarness]:
    async with running_orders(tmp_path) as harness:
        yield harness


def payment(order_id: str, amount: int, currency: str = "EUR", **extra: object) -> PaymentSucceeded:
    return PaymentSucceeded(
        attempt_id=str(extra.pop("attempt_id", uuid.uuid4())),
        order_id=order_id,
        amount=amount,
        currency=currency,
        provider="dev",
        succeeded_at=extra.pop("succeeded_at", datetime(2026, 3, 2, 9, tzinfo=UTC)),  # type: ignore[arg-type]
    )


async def test_prepare_order_snapshots_prices_taxes_and_publishes_created(
    orders: OrdersHarness,
) -> None:
    catalog = orders.catalog
    mug = catalog.add_price(
        1999, names={"en": "Mug", "de": "Tasse"}, statement_descriptor="STORE MUG"
    )
    book = catalog.add_price(1000, names={"en": "Book", "de": "Buch"}, tax_code="books")
    vat = catalog.add_rate("19")
    reduced = catalog.add_rate("7", tax_code="books")
    owner = user()
    body = prepare_in(owner, [(mug, 2), (book, 1)], locale="de")

    order, created = await orders.service.prepare_order(order=body)

    assert created is True
    assert order.id == body.order_id and order.owner == owner
    assert order.number.startswith("2026-") and len(order.number) == len("2026-000001")
    details = order.details
    assert [line["name"] for line in details["lines"]] == ["Tasse", "Buch"]
    assert [line["tax_rate_id"] for line in details["lines"]] == [vat, reduced]
    assert (details["subtotal"], details["tax"], details["total"]) == (4998, 760 + 70, 5828)
    assert order.total == details["total"] and order.currency == "EUR"
    assert details["statement_descriptor"] == "STORE MUG"
    assert details["billing"]["email"] == "ada@example.com"
    assert details["cart_id"] == body.cart_id
    assert await orders.outbox_types() == ["orders.order.created.v1"]
    # One catalog call for all prices and the billing country's tax rates.
    assert [(q.locale, q.country) for q in catalog.lookups] == [("de", "DE")]
    assert catalog.tax_queries == []


async def test_a_tax_code_without_its_own_rate_takes_the_general_rate(
    orders: OrdersHarness,
) -> None:
    food = orders.catalog.add_price(1000, tax_code="food")
    general = orders.catalog.add_rate("19")
    orders.catalog.add_rate("5", country="FR", tax_code="food")  # another country's

    order, _ = await orders.service.prepare_order(order=prepare_in(user(), [(food, 1)]))

    assert order.details["lines"][0]["tax_rate_id"] == general
    assert (order.details["tax"], order.total) == (190, 1190)


async def test_a_catalog_that_answers_no_rates_for_a_country_is_asked_per_tax_code(
    tmp_path: Path,
) -> None:
    catalog = FakeCatalog(knows_country=False)  # not upgraded yet: the lookup ignores `country`
    async with running_orders(tmp_path, catalog=catalog) as orders:
        book = catalog.add_price(1000, tax_code="books")
        mug = catalog.add_price(2000)
        catalog.add_rate("19")
        catalog.add_rate("7", tax_code="books")

        order, _ = await orders.service.prepare_order(
            order=prepare_in(user(), [(book, 1), (mug, 1)])
        )

        assert (order.details["tax"], order.total) == (70 + 380, 3450)
        assert sorted(q.get("tax_code", "") for q in catalog.tax_queries) == ["", "books"]


async def test_a_country_without_rates_is_not_taxed(orders: OrdersHarness) -> None:
    mug = orders.catalog.add_price(1000, tax_code="std")
    orders.catalog.add_rate("19")  # Germany's

    order, _ = await orders.service.prepare_order(
        order=prepare_in(user(), [(mug, 1)], country="US")
    )

    assert order.details["tax_lines"] == [] and order.total == 1000


async def test_numbers_are_unique_and_increasing(orders: OrdersHarness) -> None:
    mug = orders.catalog.add_price(500)
    numbers = [
        (await orders.service.prepare_order(order=prepare_in(user(), [(mug, 1)])))[0].number
        for _ in range(3)
    ]
    assert numbers == sorted(set(numbers))


async def test_prepare_is_idempotent_by_order_id(orders: OrdersHarness) -> None:
    mug = orders.catalog.add_price(500)
    body = prepare_in(user(), [(mug, 1)])
    first, _ = await orders.service.prepare_order(order=body)

    again, created = await orders.service.prepare_order(order=body)

    assert created is False
    assert again == first
    assert await orders.outbox_types() == ["orders.order.created.v1"]
    assert len(orders.catalog.lookups) == 1  # an existing order is not re-priced


async def test_one_order_per_cart_whatever_the_order_id(orders: OrdersHarness) -> None:
    mug = orders.catalog.add_price(500)
    body = prepare_in(user(), [(mug, 1)])
    first, _ = await orders.service.prepare_order(order=body)

    retry = body.model_copy(update={"order_id": str(uuid.uuid4())})
    again, created = await orders.service.prepare_order(order=retry)

    assert (again.id, created) == (first.id, False)


async def test_an_order_id_of_another_cart_is_a_conflict(orders: OrdersHarness) -> None:
    mug = orders.catalog.add_price(500)
    body = prepare_in(user(), [(mug, 1)])
    await orders.service.prepare_order(order=body)
    with pytest.raises(OrderIdConflict):
        await orders.service.prepare_order(
            order=body.model_copy(update={"cart_id": str(uuid.uuid4())})
        )


async def test_racing_prepares_of_one_cart_make_one_order(tmp_path: Path) -> None:
    catalog = FakeCatalog(rendezvous=2)  # both pass the "exists?" check before either inserts
    async with running_orders(tmp_path, catalog=catalog) as orders:
        mug = catalog.add_price(500)
        body = prepare_in(user(), [(mug, 1)])
        other = body.model_copy(update={"order_id": str(uuid.uuid4())})

        results = await asyncio.gather(
            orders.service.prepare_order(order=body), orders.service.prepare_order(order=other)
        )

        assert len(catalog.lookups) == 2
        assert results[0][0] == results[1][0]
        assert sorted(created for _, created in results) == [False, True]
        assert await orders.outbox_types() == ["orders.order.created.v1"]


async def test_unavailable_pricing_creates_nothing(orders: OrdersHarness) -> None:
    gone = orders.catalog.add_price(500, active=False)
    body = prepare_in(user(), [(gone, 1)])
    with pytest.raises(PricingUnavailable):
        await orders.service.prepare_order(order=body)
    with pytest.raises(OrderNotFound):
        await orders.service.get_order(principal=principal_of(body.owner), order_id=body.order_id)
    assert await orders.outbox_types() == []


async def test_details_cannot_change_through_the_orm(orders: OrdersHarness) -> None:
    mug = orders.catalog.add_price(500)
    order, _ = await orders.service.prepare_order(order=prepare_in(user(), [(mug, 1)]))

    for column, value in [
        ("details", {"total": 0}),
        ("total", 1),
        ("currency", "USD"),
        ("number", "2026-999999"),
    ]:
        with pytest.raises(ImmutableOrderError):
            async with orders.runtime.transaction() as session:
                row = await session.get(OrderRow, order.id)
                setattr(row, column, value)
                await session.flush()

    reread = await orders.service.get_order(principal=principal_of(order.owner), order_id=order.id)
    assert reread.details == order.details and reread.total == order.total


async def test_details_cannot_change_in_the_database(orders: OrdersHarness) -> None:
    mug = orders.catalog.add_price(500)
    order, _ = await orders.service.prepare_order(order=prepare_in(user(), [(mug, 1)]))

    # A bulk ORM update and raw SQL both bypass the ORM hook; the SQLite trigger refuses them.
    with pytest.raises(DBAPIError, match="immutable"):
        async with orders.runtime.transaction() as session:
            await session.execute(
                update(OrderRow).where(OrderRow.id == order.id).values(total=0, details={})
            )
    with pytest.raises(DBAPIError, match="immutable"):
        async with orders.runtime.transaction() as session:
            await session.execute(
                text("UPDATE orders SET details = '{}' WHERE id = :id"), {"id": order.id}
            )
    # What may change still can: the owner (merge) and the paid state.
    async with orders.runtime.transaction() as session:
        await session.execute(
            text("UPDATE orders SET owner_id = 'someone', paid_attempt_id = 'a' WHERE id = :id"),
            {"id": order.id},
        )
    async with orders.runtime.transaction() as session:
        row = await session.get(OrderRow, order.id)
        assert row is not None
        assert (row.owner_id, row.details) == ("someone", order.details)


async def test_the_repository_offers_no_way_to_change_an_order() -> None:
    from services.orders.store import SqlOrderRepository

    writes = {name for name in dir(SqlOrderRepository) if not name.startswith("_")} - {
        "get",
        "get_for_update",
        "get_by_number",
        "find",
        "list_for_owner",
        "list_all",
        "merged_user",
        "session",
    }
    assert writes == {
        "add",
        "next_number",
        "mark_paid",
        "cancel",
        "record_merge",
        "reassign_anonymous",
    }


async def test_orders_are_visible_to_their_owner_only(orders: OrdersHarness) -> None:
    mug = orders.catalog.add_price(500)
    mine = user()
    order, _ = await orders.service.prepare_order(order=prepare_in(mine, [(mug, 1)]))
    shopper = anonymous()
    anon_order, _ = await orders.service.prepare_order(order=prepare_in(shopper, [(mug, 1)]))

    assert (
        await orders.service.get_order(principal=principal_of(mine), order_id=order.id)
    ) == order
    for stranger, order_id in [
        (principal_of(user()), order.id),
        (principal_of(anonymous()), anon_order.id),
        (Principal(anonymous_id=mine.id), order.id),  # same id, other kind
        (Principal(), order.id),
        (principal_of(mine), "no-such-order"),
    ]:
        with pytest.raises(OrderNotFound):
            await orders.service.get_order(principal=stranger, order_id=order_id)
    with pytest.raises(Unauthorized):
        await orders.service.get_user_orders(principal=Principal())


async def test_payment_succeeded_three_times_pays_once(orders: OrdersHarness) -> None:
    mug = orders.catalog.add_price(1999)
    order, _ = await orders.service.prepare_order(order=prepare_in(user(), [(mug, 1)]))
    first = Envelope.wrap(payment(order.id, 1999), producer="payments")
    later = Envelope.wrap(
        payment(order.id, 1999, succeeded_at=datetime(2026, 3, 5, tzinfo=UTC)), producer="payments"
    )

    await orders.shared.bus.publish(first)
    await orders.settle()
    for envelope in (first, later):  # a redelivery, then a second success
        await orders.shared.bus.publish(envelope)
    await orders.settle()

    paid = await orders.service.get_order(principal=principal_of(order.owner), order_id=order.id)
    assert paid.paid == datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert paid.paid_attempt_id == first.payload["attempt_id"]
    assert await orders.outbox_types() == ["orders.order.created.v1", "orders.order.paid.v1"]
    assert orders.shared.bus.dead_letters == []


async def test_a_canceled_order_stays_canceled_when_a_payment_lands(
    orders: OrdersHarness,
) -> None:
    mug = orders.catalog.add_price(1999)
    shopper = user()
    order, _ = await orders.service.prepare_order(order=prepare_in(shopper, [(mug, 1)]))
    canceled = await orders.service.cancel_order(order_id=order.id, principal=principal_of(shopper))
    assert canceled.status == "canceled" and canceled.canceled_by == "shopper"

    await orders.shared.bus.publish(Envelope.wrap(payment(order.id, 1999), producer="payments"))
    await orders.settle()

    kept = await orders.service.get_order(principal=principal_of(shopper), order_id=order.id)
    assert (kept.status, kept.paid) == ("canceled", None)
    assert await orders.outbox_types() == ["orders.order.created.v1", "orders.order.canceled.v1"]
    assert orders.shared.bus.dead_letters == []
    with pytest.raises(OrderIsCanceled):
        await orders.service.cancel_order(order_id=order.id, principal=principal_of(shopper))


async def test_a_paid_order_cannot_be_canceled_by_anyone(orders: OrdersHarness) -> None:
    mug = orders.catalog.add_price(1999)
    shopper = user()
    order, _ = await orders.service.prepare_order(order=prepare_in(shopper, [(mug, 1)]))
    with pytest.raises(OrderNotFound):  # a stranger learns nothing
        await orders.service.cancel_order(order_id=order.id, principal=principal_of(user()))
    await orders.shared.bus.publish(Envelope.wrap(payment(order.id, 1999), producer="payments"))
    await orders.settle()

    for principal in (principal_of(shopper), None):  # the shopper, an operator
        with pytest.raises(OrderAlreadyPaid):
            await orders.service.cancel_order(
                order_id=order.id, principal=principal, actor="operator-1"
            )
    kept = await orders.service.get_order(principal=principal_of(shopper), order_id=order.id)
    assert kept.status == "paid"
    assert "orders.order.canceled.v1" not in await orders.outbox_types()


async def test_the_paid_event_lists_what_was_bought_and_what_ships(orders: OrdersHarness) -> None:
    from sqlalchemy import select

    mug = orders.catalog.add_price(1200, product_key="mug", shippable=True)
    course = orders.catalog.add_price(5000, product_key="course")
    standard = orders.catalog.add_shipping("standard", 490)
    order, _ = await orders.service.prepare_order(
        order=prepare_in(user(), [(mug, 2), (course, 1)], shipping=standard)
    )
    await orders.shared.bus.publish(
        Envelope.wrap(payment(order.id, order.total), producer="payments")
    )
    await orders.settle()

    outbox = orders.runtime.outbox
    async with orders.runtime.sessions() as session:
        bodies = {}
        for event_type in ("orders.order.paid.v1", "orders.order.created.v1"):
            query = select(outbox.c.envelope).where(outbox.c.type == event_type)
            bodies[event_type] = (await session.execute(query)).scalar_one()
    body, created = bodies["orders.order.paid.v1"], bodies["orders.order.created.v1"]
    # The created event already says where it goes (a warehouse may plan before it is paid).
    assert created["payload"]["shipping"] == body["payload"]["shipping"]
    lines = {line["product_key"]: line for line in body["payload"]["lines"]}
    assert (lines["mug"]["quantity"], lines["mug"]["shippable"]) == (2, True)
    assert (lines["course"]["quantity"], lines["course"]["shippable"]) == (1, False)
    # The warehouse learns where the goods go from the paid event itself.
    shipping = body["payload"]["shipping"]
    assert (shipping["method_code"], shipping["name"], shipping["country"]) == (
        "standard",
        "Charles Babbage",
        "DE",
    )


async def test_payment_before_the_order_is_retried_until_it_exists(tmp_path: Path) -> None:
    # A retry budget that outlasts a slow prepare: 30 s in all.
    async with running_orders(
        tmp_path, consumer_retry_ladder_ms=(10, 100, 1000), consumer_retry_budget_s=30
    ) as orders:
        mug = orders.catalog.add_price(700)
        body = prepare_in(user(), [(mug, 1)])

        await orders.shared.bus.publish(
            Envelope.wrap(payment(body.order_id, 700), producer="payments")
        )
        await orders.service.prepare_order(order=body)
        await orders.settle()

        order = await orders.service.get_order(
            principal=principal_of(body.owner), order_id=body.order_id
        )
        assert order.paid is not None
        assert orders.shared.bus.dead_letters == []


async def test_anonymous_merge_moves_orders_once_and_for_later_ones(orders: OrdersHarness) -> None:
    mug = orders.catalog.add_price(500)
    shopper, account = anonymous(), user()
    before, _ = await orders.service.prepare_order(order=prepare_in(shopper, [(mug, 1)]))
    merged = Envelope.wrap(
        AnonymousMerged(anonymous_id=shopper.id, user_id=account.id), producer="identity"
    )

    await orders.shared.bus.publish(merged)
    await orders.shared.bus.publish(merged)
    await orders.settle()
    # A checkout that was in flight during the merge still lands with the user.
    after, _ = await orders.service.prepare_order(order=prepare_in(shopper, [(mug, 1)]))

    items, _ = await orders.service.get_user_orders(principal=principal_of(account))
    assert [o.id for o in items] == [after.id, before.id]
    assert after.owner == account
    anon_items, _ = await orders.service.get_user_orders(principal=principal_of(shopper))
    assert anon_items == []


async def test_archive_pages_newest_first_with_paid_filter(orders: OrdersHarness) -> None:
    mug = orders.catalog.add_price(500)
    owner = user()
    created = [
        (await orders.service.prepare_order(order=prepare_in(owner, [(mug, 1)])))[0]
        for _ in range(5)
    ]
    await orders.service.prepare_order(order=prepare_in(user(), [(mug, 1)]))  # someone else's
    for order in created[1::2]:  # the 2nd and 4th are paid
        await orders.shared.bus.publish(Envelope.wrap(payment(order.id, 500), producer="payments"))
    await orders.settle()

    seen, cursor, pages = [], None, 0
    while True:
        page, cursor = await orders.service.get_user_orders(
            principal=principal_of(owner), limit=2, cursor=cursor
        )
        seen += [o.id for o in page]
        pages += 1
        if cursor is None:
            break
    assert seen == [o.id for o in reversed(created)]
    assert pages == 3

    paid, _ = await orders.service.get_user_orders(principal=principal_of(owner), paid="paid")
    unpaid, _ = await orders.service.get_user_orders(principal=principal_of(owner), paid="unpaid")
    assert [o.id for o in paid] == [created[3].id, created[1].id]
    assert [o.id for o in unpaid] == [created[4].id, created[2].id, created[0].id]


async def test_order_rows_count(orders: OrdersHarness) -> None:
    """Refused prepares leave no row behind (checked on the table, not through the API)."""
    missing = "no-such-pricing"
    with pytest.raises(PricingUnavailable):
        await orders.service.prepare_order(order=prepare_in(user(), [(missing, 1)]))
    async with orders.runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(OrderRow)) == 0
