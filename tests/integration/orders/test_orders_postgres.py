"""The orders service on real PostgreSQL, migrated from scratch: races, the trigger, paid once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError

from libs.contracts.envelope import Envelope
from libs.contracts.events import AnonymousMerged, PaymentSucceeded
from services.orders.tables import ImmutableOrderError, OrderRow
from tests.unit.orders.support import (
    FakeCatalog,
    OrdersHarness,
    anonymous,
    dispute_closed,
    dispute_opened,
    prepare_in,
    principal_of,
    refund_failed,
    refund_succeeded,
    running_orders,
    user,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def orders(tmp_path: Path, pg_database_url: str) -> AsyncIterator[OrdersHarness]:
    catalog = FakeCatalog(rendezvous=0)
    async with running_orders(tmp_path, catalog=catalog, database_url=pg_database_url) as harness:
        yield harness


async def count_orders(orders: OrdersHarness) -> int:
    async with orders.runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(OrderRow)) or 0)


async def test_migrations_create_the_schema_and_the_trigger(orders: OrdersHarness) -> None:
    async with orders.runtime.sessions() as session:
        tables = set(
            (
                await session.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                )
            ).scalars()
        )
        triggers = set(
            (
                await session.execute(
                    text("SELECT tgname FROM pg_trigger WHERE tgrelid = 'orders'::regclass")
                )
            ).scalars()
        )
    assert {
        "orders",
        "order_numbers",
        "owner_merges",
        "order_refunds",
        "order_disputes",
        "outbox",
        "inbox",
    } <= tables
    assert "orders_immutable" in triggers


async def test_raw_sql_cannot_change_details_but_may_set_paid(orders: OrdersHarness) -> None:
    mug = orders.catalog.add_price(1999)
    order, _ = await orders.service.prepare_order(order=prepare_in(user(), [(mug, 1)]))

    for statement in [
        "UPDATE orders SET details = '{}'::jsonb WHERE id = :id",
        "UPDATE orders SET details = jsonb_set(details, '{total}', '0') WHERE id = :id",
        "UPDATE orders SET total = 0 WHERE id = :id",
        "UPDATE orders SET currency = 'USD' WHERE id = :id",
        "UPDATE orders SET number = 'X' WHERE id = :id",
    ]:
        with pytest.raises(DBAPIError, match="immutable"):
            async with orders.runtime.transaction() as session:
                await session.execute(text(statement), {"id": order.id})
    with pytest.raises(DBAPIError, match="immutable"):
        async with orders.runtime.transaction() as session:
            await session.execute(
                update(OrderRow).where(OrderRow.id == order.id).values(details={"total": 0})
            )
    with pytest.raises(ImmutableOrderError):
        async with orders.runtime.transaction() as session:
            row = await session.get(OrderRow, order.id)
            assert row is not None
            row.details = {**row.details, "total": 0}
            await session.flush()

    async with orders.runtime.transaction() as session:
        await session.execute(
            text("UPDATE orders SET paid = now(), owner_id = 'someone-else' WHERE id = :id"),
            {"id": order.id},
        )
    async with orders.runtime.sessions() as session:
        row = await session.get(OrderRow, order.id)
        assert row is not None
        assert row.paid is not None and row.owner_id == "someone-else"
        assert row.details == order.details and row.total == 1999


async def test_racing_prepares_of_one_cart_make_one_order(orders: OrdersHarness) -> None:
    orders.catalog.rendezvous = 2  # both pass the "already exists?" check before inserting
    mug = orders.catalog.add_price(500)
    body = prepare_in(user(), [(mug, 1)])
    other = body.model_copy(update={"order_id": str(uuid.uuid4())})

    (first, first_created), (second, second_created) = await asyncio.gather(
        orders.service.prepare_order(order=body), orders.service.prepare_order(order=other)
    )

    assert len(orders.catalog.lookups) == 2
    assert first == second
    assert sorted([first_created, second_created]) == [False, True]
    assert await count_orders(orders) == 1
    assert await orders.outbox_types() == ["orders.order.created.v1"]


async def test_racing_retries_with_the_same_order_id_make_one_order(orders: OrdersHarness) -> None:
    orders.catalog.rendezvous = 3
    mug = orders.catalog.add_price(500)
    body = prepare_in(user(), [(mug, 1)])

    results = await asyncio.gather(*(orders.service.prepare_order(order=body) for _ in range(3)))

    assert {order.id for order, _ in results} == {body.order_id}
    assert sum(created for _, created in results) == 1
    assert await count_orders(orders) == 1


async def test_concurrent_checkouts_get_distinct_numbers(orders: OrdersHarness) -> None:
    mug = orders.catalog.add_price(500)
    results = await asyncio.gather(
        *(orders.service.prepare_order(order=prepare_in(user(), [(mug, 1)])) for _ in range(20))
    )
    numbers = [order.number for order, _ in results]
    assert len(set(numbers)) == 20
    assert all(number.startswith("2026-") for number in numbers)


async def test_payment_delivered_three_times_pays_once(orders: OrdersHarness) -> None:
    mug = orders.catalog.add_price(1999)
    order, _ = await orders.service.prepare_order(order=prepare_in(user(), [(mug, 1)]))

    def succeeded(attempt: str) -> Envelope:
        return Envelope.wrap(
            PaymentSucceeded(
                attempt_id=attempt,
                order_id=order.id,
                amount=1999,
                currency="EUR",
                provider="dev",
                succeeded_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
            ),
            producer="payments",
        )

    once = succeeded("attempt-1")
    await asyncio.gather(
        orders.shared.bus.publish(once),
        orders.shared.bus.publish(once),
        orders.shared.bus.publish(succeeded("attempt-2")),
    )
    await orders.settle()

    paid = await orders.service.get_order(principal=principal_of(order.owner), order_id=order.id)
    assert paid.paid == datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert paid.paid_attempt_id in {"attempt-1", "attempt-2"}
    assert (await orders.outbox_types()).count("orders.order.paid.v1") == 1
    assert orders.shared.bus.dead_letters == []


async def test_merge_and_archive_on_postgres(orders: OrdersHarness) -> None:
    mug = orders.catalog.add_price(500)
    shopper, account = anonymous(), user()
    placed = [
        (await orders.service.prepare_order(order=prepare_in(shopper, [(mug, 1)])))[0]
        for _ in range(3)
    ]
    await orders.shared.bus.publish(
        Envelope.wrap(
            AnonymousMerged(anonymous_id=shopper.id, user_id=account.id), producer="identity"
        )
    )
    await orders.settle()

    page, cursor = await orders.service.get_user_orders(principal=principal_of(account), limit=2)
    rest, end = await orders.service.get_user_orders(
        principal=principal_of(account), limit=2, cursor=cursor
    )
    assert [o.id for o in page + rest] == [o.id for o in reversed(placed)]
    assert end is None


async def test_a_deep_archive_page_reads_only_its_own_orders(orders: OrdersHarness) -> None:
    """A shopper with thousands of orders: the page after a cursor deep in the archive walks
    the index from the cursor, not through every newer order first."""
    from datetime import timedelta

    from sqlalchemy import event, insert

    mug = orders.catalog.add_price(500)
    shopper = user()
    order, _ = await orders.service.prepare_order(order=prepare_in(shopper, [(mug, 1)]))
    async with orders.runtime.engine.begin() as connection:
        original = dict(
            (await connection.execute(select(OrderRow.__table__).where(OrderRow.id == order.id)))
            .one()
            ._mapping
        )
        copies = [
            {
                **original,
                "id": str(uuid.uuid4()),
                "number": f"T-{n:06d}-{uuid.uuid4().hex[:8]}",
                "cart_id": f"copy-{uuid.uuid4()}",
                "created_at": original["created_at"] - timedelta(minutes=n),
            }
            for n in range(1, 3_000)
        ]
        # Other shoppers order at the same times: the archive is one owner's among many (and
        # the operator's index of every order by date is no shortcut to it).
        others = [
            {
                **copy,
                "id": str(uuid.uuid4()),
                "number": f"O-{copy['number'][2:]}",
                "cart_id": f"other-{uuid.uuid4()}",
                "owner_id": f"other-{n % 50}",
            }
            for n, copy in enumerate(copies)
        ]
        await connection.execute(insert(OrderRow), copies + others)
        await connection.execute(text("ANALYZE orders"))

    principal = principal_of(shopper)
    cursor = None
    for _ in range(3):  # a few pages in, so the cursor points past many newer orders
        _, cursor = await orders.service.get_user_orders(
            principal=principal, limit=100, cursor=cursor
        )
    statements: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, *_args) -> None:  # type: ignore[no-untyped-def]
        if "FROM orders" in statement:
            statements.append((statement, parameters))

    engine = orders.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        page, _ = await orders.service.get_user_orders(principal=principal, limit=5, cursor=cursor)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert [o.id for o in page] == [c["id"] for c in copies[299:304]]

    ((statement, parameters),) = statements
    async with orders.runtime.engine.connect() as connection:
        raw = await connection.exec_driver_sql(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + statement,
            parameters,  # type: ignore[arg-type]
        )
        plan = raw.scalar()[0]["Plan"]  # type: ignore[index]

    def scans(node: dict) -> list[dict]:  # type: ignore[type-arg]
        found = [node] if "Index" in node["Node Type"] else []
        return found + [s for child in node.get("Plans", []) for s in scans(child)]

    (scan,) = scans(plan)
    assert scan["Index Name"] == "ix_orders_owner_created"
    # The page and the one row that tells whether another page follows; nothing filtered out.
    assert scan["Actual Rows"] <= 6 and scan.get("Rows Removed by Filter", 0) == 0, plan


async def test_racing_reports_of_one_refund_keep_one_final_status(orders: OrdersHarness) -> None:
    mug = orders.catalog.add_price(4000)
    order, _ = await orders.service.prepare_order(order=prepare_in(user(), [(mug, 1)]))
    refund_id = str(uuid.uuid4())
    reports = [
        refund_succeeded(order.id, 1500, refund_id=refund_id),
        refund_failed(order.id, 1500, refund_id=refund_id),
    ] * 4

    async def deliver(report: object) -> None:
        async with orders.runtime.transaction() as session:
            await orders.service.record_refund(session=session, refund=report)

    await asyncio.gather(*(deliver(report) for report in reports))

    seen = await orders.service.get_order(principal=principal_of(order.owner), order_id=order.id)
    [kept] = seen.refunds
    assert kept.id == refund_id and kept.status in ("succeeded", "failed")
    assert seen.refunded_amount == (1500 if kept.status == "succeeded" else 0)
    for report in reports:  # later reports change nothing
        await deliver(report)
    again = await orders.service.get_order(principal=principal_of(order.owner), order_id=order.id)
    assert [(r.status, r.amount) for r in again.refunds] == [(kept.status, 1500)]


async def test_racing_reports_of_one_dispute_end_closed(orders: OrdersHarness) -> None:
    mug = orders.catalog.add_price(4000)
    order, _ = await orders.service.prepare_order(order=prepare_in(user(), [(mug, 1)]))
    opened = dispute_opened(order.id, 4000)
    reports = [dispute_closed(opened, "lost"), opened] * 4

    async def deliver(report: object) -> None:
        async with orders.runtime.transaction() as session:
            await orders.service.record_dispute(session=session, dispute=report)

    # Whichever report commits first, the closed one ends it and no opened one reopens it.
    await asyncio.gather(*(deliver(report) for report in reports))

    seen = await orders.service.get_order(principal=principal_of(order.owner), order_id=order.id)
    [kept] = seen.disputes
    assert (kept.id, kept.status, kept.amount) == (opened.dispute_id, "lost", 4000)
    assert kept.closed_at is not None
