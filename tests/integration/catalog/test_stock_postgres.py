"""Stock on real PostgreSQL: the reservation scenarios of tests/unit/catalog/test_stock.py run
again here, where racing transactions really interleave (50 checkouts for the last 10 units,
multi-line orders taken in opposite orders), plus races on one order."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from libs.runtime.runtime import shared_for
from libs.runtime.settings import RuntimeSettings
from services.catalog.bootstrap import CatalogDeps, build_deps
from services.catalog.settings import CatalogSettings
from tests.unit.catalog.test_stock import (
    line,
    product,
    test_a_payment_after_the_stock_went_is_sold_and_backordered,
    test_an_old_attempts_expiry_leaves_a_pay_agains_hold,
    test_out_of_stock_names_the_products_and_reserves_nothing,
    test_racing_multi_line_reservations_take_all_lines_or_none,
    test_racing_reservations_never_oversell,
    test_reserve_holds_and_a_retry_answers_the_same,
    test_the_sweep_releases_holds_past_their_deadline,
)

pytestmark = pytest.mark.integration

__all__ = [
    "test_a_payment_after_the_stock_went_is_sold_and_backordered",
    "test_an_old_attempts_expiry_leaves_a_pay_agains_hold",
    "test_out_of_stock_names_the_products_and_reserves_nothing",
    "test_racing_multi_line_reservations_take_all_lines_or_none",
    "test_racing_reservations_never_oversell",
    "test_reserve_holds_and_a_retry_answers_the_same",
    "test_the_sweep_releases_holds_past_their_deadline",
]


@pytest.fixture
async def catalog(tmp_path: Path, pg_database_url: str) -> AsyncIterator[CatalogDeps]:
    """Migrated on start and running on PostgreSQL, with a pool wide enough to race."""
    settings = CatalogSettings(
        runtime=RuntimeSettings(data_dir=tmp_path, broker_url="memory://", db_pool_size=20),
        database_url=pg_database_url,
        seed=False,
    )
    deps = build_deps(settings, shared_for(settings.runtime))
    await deps.runtime.start()
    try:
        yield deps
    finally:
        await deps.runtime.stop()


async def test_racing_retries_of_one_order_hold_its_units_once(catalog: CatalogDeps) -> None:
    key, pricing = await product(catalog, on_hand=10)
    oid = str(uuid.uuid4())
    results = await asyncio.gather(
        *(
            catalog.service.stock.reserve_stock(order_id=oid, lines=[line(pricing, 3)])
            for _ in range(8)
        )
    )
    assert {r.status for r in results} == {"held"}
    level = await catalog.service.stock.get_stock(key=key)
    assert (level.reserved, level.available) == (3, 7)


async def test_racing_commits_and_releases_of_one_order_sell_it_once(catalog: CatalogDeps) -> None:
    key, pricing = await product(catalog, on_hand=4)
    stock = catalog.service.stock
    oid = str(uuid.uuid4())
    await stock.reserve_stock(order_id=oid, lines=[line(pricing, 2)])
    calls = [stock.commit_stock(order_id=oid) for _ in range(4)]
    calls += [stock.release_stock(order_id=oid) for _ in range(4)]
    await asyncio.gather(*calls)
    level = await stock.get_stock(key=key)
    # Sold once (from the hold, or after a release from free stock): 2 units gone, none held.
    assert (level.on_hand, level.reserved, level.available) == (2, 0, 2)
