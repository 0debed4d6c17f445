"""The order archive and the outbox at scale: data written straight into a service's database
(as services/catalog/bulk.py does for products), because making 10,000 orders or a million
outbox rows through the API would take longer than the whole run.

Orders are copies of one real order of the shopper (placed through the checkout), each with
its own id, number, cart and an older `created_at`, so the archive lists them exactly as it
would list orders placed one by one. Outbox rows are published events as the relay leaves
them (`published_at` set), which is what a week of retention keeps.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import insert, select, text

from bench.wrk import Measure
from libs.runtime.db import create_engine


@dataclass(frozen=True)
class Archive:
    """A shopper's archive as written: order ids newest first (the real order first)."""

    order_ids: list[str]
    created_at: list[object]


async def copy_orders(
    database_url: str, order_id: str, count: int, *, batch: int = 1_000
) -> Archive:
    """Give the owner of `order_id` `count` orders in all: the real one plus older copies."""
    from services.orders.tables import OrderRow

    table = OrderRow.__table__
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            row = (await connection.execute(select(table).where(table.c.id == order_id))).one()
        original = dict(row._mapping)
        ids = [order_id]
        moments: list[object] = [original["created_at"]]
        run = uuid.uuid4().hex[:8]
        for first in range(1, count, batch):
            rows = []
            for n in range(first, min(first + batch, count)):
                new_id = str(uuid.uuid4())
                moment = original["created_at"] - timedelta(minutes=n)
                rows.append(
                    {
                        **original,
                        "id": new_id,
                        "number": f"B{run}-{n:07d}",
                        "cart_id": f"bench-{run}-{n:07d}",
                        "created_at": moment,
                    }
                )
                ids.append(new_id)
                moments.append(moment)
            async with engine.begin() as connection:
                await connection.execute(insert(OrderRow), rows)
        async with engine.begin() as connection:
            await connection.execute(text("ANALYZE orders"))
    finally:
        await engine.dispose()
    return Archive(ids, moments)


def deep_cursor(archive: Archive, limit: int) -> str:
    """The cursor of a page halfway through the archive (the last page of a short one): a
    shopper who paged that far. Halfway, because a cursor near either end is the easy case
    for a query that cannot start its walk at the cursor."""
    from services.orders.domain import Cursor

    last = min(len(archive.order_ids) // 2, len(archive.order_ids) - limit) - 1
    if last < 0:
        raise ValueError("the archive is shorter than two pages")
    return Cursor(
        created_at=archive.created_at[last],  # type: ignore[arg-type]
        order_id=archive.order_ids[last],
    ).encode()


async def fill_outbox(database_url: str, count: int) -> float:
    """Add `count` published rows to a service's outbox in one statement; returns seconds."""
    import time

    started = time.monotonic()
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO outbox (event_id, type, envelope, created_at, published_at, "
                    "attempts) SELECT gen_random_uuid()::text, 'bench.retained.v1', "
                    "CAST('{}' AS jsonb), now() - make_interval(secs => n), "
                    "now() - make_interval(secs => n), 0 FROM generate_series(1, :count) AS n"
                ),
                {"count": count},
            )
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("VACUUM ANALYZE outbox"))
    finally:
        await engine.dispose()
    return time.monotonic() - started


async def clear_published(database_url: str) -> int:
    """Forget the events this run's outbox already published (what pruning does, sooner)."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            result = await connection.execute(
                text("DELETE FROM outbox WHERE published_at IS NOT NULL")
            )
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("VACUUM ANALYZE outbox"))
    finally:
        await engine.dispose()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def publish_latency(
    catalog_url: str,
    token: str,
    product_keys: list[str],
    *,
    amqp_url: str,
    exchange: str,
    rate: float,
    count: int,
    wait_s: float = 10.0,
) -> Measure:
    """Change a product's French name `count` times at `rate` per second (open loop, each on
    another product so no change waits on another's row lock) and time each from its scheduled
    moment until its `catalog.product.changed.v1` reaches a private queue: the write, the
    outbox row committed with it, the relay finding the row and the broker's confirm."""
    import asyncio

    import httpx

    from bench.checkout import EventProbe, Latencies, on_schedule
    from bench.shop import explain

    if not product_keys:
        raise ValueError("no products to change")
    run = uuid.uuid4().hex[:8]
    due: dict[str, float] = {}
    errors: list[str] = []

    def marker_of(body: dict) -> str | None:  # type: ignore[type-arg]
        name = (body.get("payload") or {}).get("names", {}).get("fr", "")
        return name if isinstance(name, str) and name.startswith(f"bench {run} ") else None

    async with (
        EventProbe(amqp_url, exchange, CHANGED_EVENT, marker_of) as probe,
        httpx.AsyncClient(
            base_url=catalog_url, timeout=15, headers={"x-service-token": token}
        ) as http,
    ):
        probe.expected = count

        async def change(i: int, at: float) -> None:
            marker = f"bench {run} {i}"
            due[marker] = at
            key = product_keys[i % len(product_keys)]
            try:
                response = await http.put(
                    f"/admin/products/{key}/translations/fr",
                    json={"name": marker, "description": "Publikation gemessen"},
                )
                if response.status_code >= 400:
                    errors.append(explain(response))
            except httpx.HTTPError as exc:
                errors.append(repr(exc))

        seconds = await on_schedule(count, rate, change, lead_s=0.05)
        if not errors:
            try:
                await asyncio.wait_for(probe.all_seen.wait(), wait_s)
            except TimeoutError:
                pass
        seen = dict(probe.seen)
    latency = Latencies([(seen[m] - at) * 1000 for m, at in due.items() if m in seen])
    missing = count - len(latency.values_ms) - len(errors)
    return Measure(
        requests=len(latency.values_ms),
        seconds=seconds,
        p50_ms=latency.percentile(50),
        p99_ms=latency.percentile(99),
        errors=len(errors) + max(0, missing),
        error_detail="; ".join(
            ([f"{missing} not published within {wait_s:.0f} s"] if missing > 0 else [])
            + ([f"{len(errors)} failed changes: {errors[0]}"] if errors else [])
        ),
    )


CHANGED_EVENT = "catalog.product.changed.v1"
