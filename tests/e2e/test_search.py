"""Finding products through `/api/store/products`, in both modes: words in a locale, typos,
clear refusals, and a price-ordered walk by cursor that stays whole while products are added."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.runtime.db import create_engine
from services.catalog.bulk import generate_products
from services.catalog.tables import products
from tests.e2e.helpers import assert_problem
from tests.support.cluster import RunningStore

# A currency no example product is priced in: only this test's products have a price in it.
CURRENCY = "PLN"
N = 1_000


async def search(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/api/store/products", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def catalog_database_url(store: RunningStore) -> str:
    if store.mode == "embedded":
        return f"sqlite+aiosqlite:///{Path(store.log_dir) / 'catalog.db'}"
    return store.env["CATALOG_DATABASE_URL"]


@pytest.fixture
async def catalog_db(store: RunningStore) -> AsyncIterator[AsyncEngine]:
    """The store's catalog database, written the way the catalog's bulk loader writes it
    (its texts reach the search index in the same transaction)."""
    engine = create_engine(catalog_database_url(store), pool_size=2)
    yield engine
    await engine.dispose()


async def test_tasse_in_german_and_the_typo_mgu_find_the_mug(client: httpx.AsyncClient) -> None:
    [first, *_] = await search(client, q="tasse", locale="de")
    assert first["key"] == "mug" and first["name"] == "Steinzeugtasse"
    [first, *_] = await search(client, q="mgu")
    assert first["key"] == "mug" and first["name"] == "Stoneware mug"
    response = await client.get(
        "/api/store/products", params={"q": "tasse"}, headers={"accept-language": "de-DE"}
    )
    assert response.json()["items"][0]["key"] == "mug"
    shipped = await search(client, q="mug", shippable="true", currency="EUR", price_max=10**9)
    assert [p["key"] for p in shipped][:1] == ["mug"]


async def test_bad_search_input_is_a_clear_422(client: httpx.AsyncClient) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"sort": "cheap"}, "sort"),
        ({"price_min": 9, "price_max": 1, "currency": "EUR"}, "price_min"),
        ({"price_min": 1}, "currency"),
        ({"q": "x" * 201}, "q"),
    ]
    for params, field in cases:
        response = await client.get("/api/store/products", params=params)
        assert_problem(response, 422)
        body = response.json()
        assert field in str(body), body


async def test_price_asc_pages_through_every_product_while_more_are_added(
    client: httpx.AsyncClient, catalog_db: AsyncEngine
) -> None:
    # "zz": after the example's keys, so other tests' first product stays an example one.
    prefix = f"zz-search-{uuid.uuid4().hex[:8]}"
    await generate_products(catalog_db, N, CURRENCY, key_prefix=prefix, batch_size=500)
    try:
        there_all_along = {f"{prefix}-{n:07d}" for n in range(N)}
        stop = asyncio.Event()

        async def add_products() -> int:
            added = 0
            for batch in range(200):  # bounded; every price again, before and after the cursor
                if stop.is_set():
                    break
                await generate_products(
                    catalog_db, 10, CURRENCY, key_prefix=prefix, start=N + 10 * batch
                )
                added += 10
                await asyncio.sleep(0.01)
            return added

        adding = asyncio.create_task(add_products())
        seen: list[str] = []
        amounts: list[int] = []
        cursor = None
        for _ in range(100):  # bounded: N / 50 pages, and what gets added meanwhile
            params = {"sort": "price_asc", "currency": CURRENCY, "limit": 50}
            if cursor:
                params["cursor"] = cursor
            response = await client.get("/api/store/products", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            seen.extend(p["key"] for p in page["items"])
            amounts.extend(min(x["unit_amount"] for x in p["prices"]) for p in page["items"])
            if (cursor := page["next_cursor"]) is None:
                break
        stop.set()
        added = await adding
        assert cursor is None, "the walk did not reach the end"
        assert added > 0, "nothing was added while paging"
        assert len(seen) == len(set(seen)), "a product came twice"
        assert there_all_along <= set(seen), "a product that was there all along was skipped"
        assert amounts == sorted(amounts)
    finally:
        # Out of the shop again, so later tests list the example catalog only.
        async with catalog_db.begin() as connection:
            await connection.execute(
                update(products)
                .where(products.c.key.like(f"{prefix}-%"))
                .values(active=False, sellable=False)
            )
