"""The product search's cases, over the catalog's HTTP API: run on SQLite (tests/api) and on
real PostgreSQL (tests/integration), so both adapters keep the same behaviour.

Each case takes a client of a catalog seeded from the shipped example and its app (for bulk
inserts), and makes its own products under a random prefix, so cases run in any order.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import String, select

from services.catalog.bulk import generate_products
from services.catalog.tables import outbox

Case = Callable[[httpx.AsyncClient, FastAPI], Awaitable[None]]


def token() -> str:
    """A made-up word no other product holds: letters only, so every tokenizer keeps it."""
    return "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])


async def found(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/products", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def all_pages(
    client: httpx.AsyncClient, *, limit: int = 7, **params: Any
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1_000):  # bounded: a broken cursor must not loop forever
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/products", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        if (cursor := page["next_cursor"]) is None:
            return items
    raise AssertionError("the pages never ended")


async def create(client: httpx.AsyncClient, key: str, **fields: Any) -> dict[str, Any]:
    body = {
        "key": key,
        "translations": {"en": {"name": f"Product {key}"}},
        "prices": [{"unit_amount": 1000, "currency": "EUR"}],
        **fields,
    }
    response = await client.post("/admin/products", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


# ---------------------------------------------------------------------------- the cases


async def german_tasse_and_the_typo_mgu_find_the_mug(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    tasse = await found(client, q="tasse", locale="de")
    assert tasse[0]["key"] == "mug" and tasse[0]["name"] == "Steinzeugtasse"
    assert tasse[0]["locale"] == "de"
    assert (await found(client, q="mgu"))[0]["key"] == "mug"
    assert (await found(client, q="Steinzeug", locale="de"))[0]["key"] == "mug"
    assert (await found(client, q="mug en grès", locale="fr"))[0]["name"] == "Mug en grès"
    assert await found(client, q="zzqqxxyy") == []


async def a_missing_translation_falls_back_to_the_default_locale(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    word = token()
    await create(client, f"fallback-{word}", translations={"en": {"name": f"Lamp {word}"}})
    [german] = await found(client, q=word, locale="de")
    assert german["name"] == f"Lamp {word}" and german["locale"] == "en"


async def changes_show_in_search_at_once(client: httpx.AsyncClient, app: FastAPI) -> None:
    word, other = token(), token()
    key = f"change-{word}"
    await create(client, key, translations={"en": {"name": f"Vase {word}"}})
    assert [p["key"] for p in await found(client, q=word)] == [key]
    response = await client.put(
        f"/admin/products/{key}/translations/de", json={"name": f"Vase {other}"}
    )
    assert response.status_code == 200, response.text
    assert [p["key"] for p in await found(client, q=other, locale="de")] == [key]
    response = await client.put(
        f"/admin/products/{key}/translations/en", json={"name": "Vase", "description": other}
    )
    assert response.status_code == 200, response.text
    assert await found(client, q=word) == []
    response = await client.patch(f"/admin/products/{key}", json={"active": False})
    assert response.status_code == 200, response.text
    assert await found(client, q=other) == []
    # Searching needs no event of its own: the product's changes told consumers as before.
    async with app.state.deps.runtime.engine.connect() as connection:
        types = (
            (
                await connection.execute(
                    select(outbox.c.type).where(outbox.c.envelope.cast(String).like(f"%{key}%"))
                )
            )
            .scalars()
            .all()
        )
    assert types and set(types) <= {"catalog.product.changed.v1", "catalog.pricing.changed.v1"}
    assert "catalog.product.changed.v1" in types


async def filters_narrow_and_prices_show_in_the_currency(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    word = token()
    for n, (shippable, amount) in enumerate([(True, 500), (False, 1500), (True, 2500)]):
        await create(
            client,
            f"filter-{word}-{n}",
            shippable=shippable,
            translations={"en": {"name": f"Bowl {word}"}},
            prices=[
                {"unit_amount": amount, "currency": "CHF"},
                {"unit_amount": amount + 1, "currency": "EUR"},
            ],
        )

    def keys(items: list[dict[str, Any]]) -> list[str]:
        return [p["key"].rsplit("-", 1)[1] for p in items]

    assert keys(
        await found(client, q=word, shippable="true", sort="price_asc", currency="CHF")
    ) == [
        "0",
        "2",
    ]
    assert keys(await found(client, q=word, shippable="false")) == ["1"]
    bounded = await found(
        client, q=word, currency="CHF", price_min=1000, price_max=2500, sort="price_desc"
    )
    assert keys(bounded) == ["2", "1"]
    assert [p["currency"] for p in bounded[0]["prices"]] == ["CHF"]
    # Without a price in the currency asked for, a product shows all its prices.
    [product] = await found(client, q=word, currency="JPY", shippable="false")
    assert sorted(p["currency"] for p in product["prices"]) == ["CHF", "EUR"]


async def every_sort_pages_by_cursor_without_duplicates_or_gaps(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    prefix = f"keyset-{token()}"
    # Prices repeat every 100 products, so the id must break ties.
    await generate_products(app.state.deps.runtime, 230, "SEK", key_prefix=prefix)
    mine = {"currency": "SEK"}
    ascending = await all_pages(client, sort="price_asc", price_min=0, **mine)
    assert len(ascending) == 230 == len({p["key"] for p in ascending})
    amounts = [min(x["unit_amount"] for x in p["prices"]) for p in ascending]
    assert amounts == sorted(amounts)
    descending = await all_pages(client, sort="price_desc", price_min=0, **mine)
    assert [p["key"] for p in descending] == [p["key"] for p in ascending][::-1]
    newest = await all_pages(client, sort="newest", limit=50)
    assert {p["key"] for p in ascending} <= {p["key"] for p in newest}
    assert len(newest) == len({p["key"] for p in newest})
    # "Synthetic product number N." — every one of them matches, ranked, then by id.
    relevant = await all_pages(client, q="synthetic", limit=40)
    assert {p["key"] for p in ascending} <= {p["key"] for p in relevant}
    assert len(relevant) == len({p["key"] for p in relevant})


async def pages_stay_whole_while_products_are_added(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    prefix = f"growing-{token()}"
    runtime = app.state.deps.runtime
    await generate_products(runtime, 120, "NOK", key_prefix=prefix)
    before = {f"{prefix}-{n:07d}" for n in range(120)}
    seen: list[str] = []
    cursor = None
    for round_ in range(100):  # bounded
        query = {"sort": "price_asc", "currency": "NOK", "limit": 9}
        response = await client.get(
            "/products", params={**query, **({"cursor": cursor} if cursor else {})}
        )
        assert response.status_code == 200, response.text
        page = response.json()
        seen.extend(p["key"] for p in page["items"])
        # Products added between pages, at every price, before and after the cursor.
        await generate_products(runtime, 3, "NOK", key_prefix=prefix, start=1_000 + 3 * round_)
        if (cursor := page["next_cursor"]) is None:
            break
    assert len(seen) == len(set(seen)), "a product came twice"
    assert before <= set(seen), "a product that was there all along was skipped"


async def bad_input_is_a_clear_422(client: httpx.AsyncClient, app: FastAPI) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"sort": "cheap"}, "sort", "must be one of relevance, price_asc"),
        ({"price_min": 5}, "currency", "is required with price_min or price_max"),
        ({"sort": "price_asc"}, "currency", "is required to sort by price_asc"),
        ({"price_min": 9, "price_max": 1, "currency": "EUR"}, "price_min", "price_max"),
        ({"price_min": -1, "currency": "EUR"}, "price_min", "0 or more"),
        ({"q": "x" * 201}, "q", "at most 200"),
        ({"q": "!!!"}, "q", "a letter or a digit"),
        ({"sort": "relevance"}, "sort", "needs a query text"),
        ({"currency": "XYZ", "price_min": 1}, "currency", "unknown currency"),
        ({"q": "mug", "cursor": "s1.bm9wZQ"}, "cursor", "not a cursor of this list"),
    ]
    for params, field, message in cases:
        response = await client.get("/products", params=params)
        assert response.status_code == 422, (params, response.text)
        errors = response.json()["errors"]
        assert [e["field"] for e in errors] == [field], (params, errors)
        assert message in errors[0]["message"], (params, errors)
    # A cursor of one sort is refused by another.
    response = await client.get("/products", params={"sort": "newest", "limit": 1})
    cursor = response.json()["next_cursor"]
    response = await client.get("/products", params={"q": "mug", "cursor": cursor})
    assert response.status_code == 422 and response.json()["code"] == "invalid_cursor"


async def without_search_parameters_the_list_stays_in_key_order(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    response = await client.get("/products", params={"limit": 3})
    page = response.json()
    keys = [p["key"] for p in page["items"]]
    assert keys == sorted(keys)
    assert not page["next_cursor"].startswith("s1.")


CASES: list[Case] = [
    german_tasse_and_the_typo_mgu_find_the_mug,
    a_missing_translation_falls_back_to_the_default_locale,
    changes_show_in_search_at_once,
    filters_narrow_and_prices_show_in_the_currency,
    every_sort_pages_by_cursor_without_duplicates_or_gaps,
    pages_stay_whole_while_products_are_added,
    bad_input_is_a_clear_422,
    without_search_parameters_the_list_stays_in_key_order,
]
