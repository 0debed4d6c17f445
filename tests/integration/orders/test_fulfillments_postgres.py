"""Fulfilments and the operator's reads on real PostgreSQL: the same tests as on SQLite, where
the row lock (`SELECT … FOR UPDATE`) and the JSONB e-mail filter are PostgreSQL's own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.unit.orders.support import FakeCatalog, OrdersHarness, running_orders
from tests.unit.orders.test_fulfillments import (  # noqa: F401 (collected here, on PostgreSQL)
    test_a_partial_then_the_rest_fulfils_the_order_with_one_event_each,
    test_operators_list_every_order_newest_first_and_find_one,
    test_racing_fulfilments_never_exceed_the_order,
    test_refusals_change_nothing,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def orders(tmp_path: Path, pg_database_url: str) -> AsyncIterator[OrdersHarness]:
    catalog = FakeCatalog(rendezvous=0)
    async with running_orders(tmp_path, catalog=catalog, database_url=pg_database_url) as harness:
        yield harness


async def test_a_deep_page_of_every_order_reads_only_its_own_orders(
    orders: OrdersHarness,
) -> None:
    """The operator's list, deep in a long archive of many shoppers: the page after a cursor
    walks ix_orders_created from the cursor, not through every newer order first."""
    import uuid
    from datetime import timedelta

    from sqlalchemy import event, insert, select, text

    from services.orders.tables import OrderRow
    from tests.unit.orders.support import prepare_in, user

    mug = orders.catalog.add_price(500)
    order, _ = await orders.service.prepare_order(order=prepare_in(user(), [(mug, 1)]))
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
                "number": f"T-{n:06d}",
                "cart_id": f"copy-{uuid.uuid4()}",
                "owner_id": f"shopper-{n % 97}",
                "created_at": original["created_at"] - timedelta(minutes=n),
            }
            for n in range(1, 3_000)
        ]
        await connection.execute(insert(OrderRow), copies)
        await connection.execute(text("ANALYZE orders"))

    cursor = None
    for _ in range(3):
        _, cursor = await orders.service.get_all_orders(limit=100, cursor=cursor)
    statements: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, *_args) -> None:  # type: ignore[no-untyped-def]
        if "FROM orders" in statement:
            statements.append((statement, parameters))

    engine = orders.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        page, _ = await orders.service.get_all_orders(limit=5, cursor=cursor)
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
    assert scan["Index Name"] == "ix_orders_created"
    assert scan["Actual Rows"] <= 6, plan
