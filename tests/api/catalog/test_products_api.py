"""The read API over HTTP, on the catalog the embedded mode seeds from the shipped example."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from PIL import Image

from services.catalog.app import create_app
from tests.api.catalog.support import ADMIN, catalog_settings, problem

# Every test here only reads: they share one seeded app, which keeps the module fast.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    """The embedded-mode catalog: migrated and seeded from the shipped example on start."""
    app = create_app(catalog_settings(tmp_path_factory.mktemp("catalog"), seed=True))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://catalog", headers=ADMIN
        ) as client:
            yield client


async def all_pages(client: httpx.AsyncClient, **params: str | int) -> list[dict]:
    items: list[dict] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/products", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def test_the_seeded_shop_lists_every_product_once_with_prices_and_images(
    client: httpx.AsyncClient,
) -> None:
    products = await all_pages(client, limit=2)

    keys = [p["key"] for p in products]
    assert keys == sorted(set(keys)) and len(keys) >= 8
    for product in products:
        assert product["active"] is True and product["prices"] and product["locale"] == "en"
    mug = next(p for p in products if p["key"] == "mug")
    assert mug["name"] == "Stoneware mug"
    assert mug["prices"] == [
        {
            "id": mug["prices"][0]["id"],
            "unit_amount": 1290,
            "currency": "EUR",
            "interval": None,
            "interval_count": 1,
        }
    ]
    [image] = mug["images"]
    assert image["url"].startswith("/media/products/mug/") and image["url"].endswith(".jpg")
    assert set(image["thumbnails"]) == {"64", "256", "512"}


async def test_images_and_thumbnails_are_served_with_long_cache_headers(
    client: httpx.AsyncClient,
) -> None:
    product = (await client.get("/products/poster")).json()
    [image] = product["images"]
    for size, url in image["thumbnails"].items():
        response = await client.get(url)
        assert response.status_code == 200
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.headers["content-type"] == "image/webp"
        thumbnail = Image.open(io.BytesIO(response.content))
        assert max(thumbnail.size) == min(int(size), max(image["width"], image["height"]))
    assert (await client.get(image["url"])).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/media/../catalog.db",
        "/media/%2e%2e/catalog.db",
        "/media/products/mug/..%2f..%2f..%2fcatalog.db",
        "/media/products/mug/missing.jpg",
        "/media/products",
        "/media/.hidden.png",
        "/media//etc/passwd",
    ],
)
async def test_media_never_serves_anything_outside_its_folder(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_texts_follow_the_locale_parameter_then_accept_language(
    client: httpx.AsyncClient,
) -> None:
    german = (await client.get("/products/mug", params={"locale": "de-AT"})).json()
    assert (german["name"], german["locale"]) == ("Steinzeugtasse", "de")

    french = await client.get("/products/mug", headers={"accept-language": "ja, fr-CA;q=0.8"})
    assert (french.json()["name"], french.json()["locale"]) == ("Mug en grès", "fr")

    both = await client.get("/products", params={"locale": "de"}, headers={"accept-language": "fr"})
    assert all(item["locale"] == "de" for item in both.json()["items"])

    unknown = (await client.get("/products/mug", headers={"accept-language": "x-klingon"})).json()
    assert unknown["name"] == "Stoneware mug"  # the default locale


@pytest.mark.parametrize(
    ("params", "field", "code"),
    [
        ({"locale": "xx"}, "locale", "unknown_locale"),
        ({"locale": "not a locale"}, "locale", "unknown_locale"),
        ({"cursor": "garbage!"}, "cursor", "invalid_cursor"),
        ({"limit": 0}, "query.limit", "validation_error"),
        ({"limit": 101}, "query.limit", "validation_error"),
        ({"active": "maybe"}, "query.active", "validation_error"),
    ],
)
async def test_bad_list_parameters_are_422_naming_the_field(
    client: httpx.AsyncClient, params: dict, field: str, code: str
) -> None:
    problem(await client.get("/products", params=params), 422, code, field)


async def test_filters_recurring_and_one_off(client: httpx.AsyncClient) -> None:
    recurring = await all_pages(client, recurring="true")
    one_off = await all_pages(client, recurring="false")
    assert [p["key"] for p in recurring] == ["coffee", "stickers"]
    assert "coffee" in [p["key"] for p in one_off] and "mug" in [p["key"] for p in one_off]
    assert await all_pages(client, active="false") == []


async def test_an_unknown_product_is_404(client: httpx.AsyncClient) -> None:
    problem(await client.get("/products/no-such-thing"), 404, "product_not_found")


async def test_pricing_lookup_in_one_call_with_missing_ids(client: httpx.AsyncClient) -> None:
    coffee = (await client.get("/products/coffee")).json()
    ids = [price["id"] for price in coffee["prices"]]

    response = await client.post(
        "/internal/pricings/lookup", json={"ids": [*ids, "unknown-id"], "locale": "fr"}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["missing"] == ["unknown-id"]
    assert [(i["pricing_id"], i["interval"]) for i in body["items"]] == [
        (ids[0], None),
        (ids[1], "month"),
    ]
    assert {i["name"] for i in body["items"]} == {"Café mélange maison, 250 g"}
    assert body["items"][0]["tax_code"] == "food" and body["items"][0]["active"] is True

    problem(
        await client.post("/internal/pricings/lookup", json={"ids": ids, "locale": "zz"}),
        422,
        "unknown_locale",
        "locale",
    )
    too_many = {"ids": [str(n) for n in range(501)]}
    problem(await client.post("/internal/pricings/lookup", json=too_many), 422, "validation_error")


async def test_pricing_lookup_with_a_country_brings_the_rates_of_its_tax_codes(
    client: httpx.AsyncClient,
) -> None:
    coffee = (await client.get("/products/coffee")).json()["prices"][0]["id"]  # food
    cap = (await client.get("/products/cap")).json()["prices"][0]["id"]  # no rate of its own

    def rates(body: dict[str, Any]) -> list[tuple[str, str | None]]:
        return sorted((r["percentage"], r["tax_code"]) for r in body["tax_rates"])

    both = await client.post(
        "/internal/pricings/lookup", json={"ids": [coffee, cap], "country": "DE"}
    )
    assert rates(both.json()) == [("19", None), ("7", "food")]
    assert both.json()["country"] == "DE"
    food_only = await client.post(
        "/internal/pricings/lookup", json={"ids": [coffee], "country": "FR"}
    )
    assert rates(food_only.json()) == [("5.5", "food")]
    untaxed = await client.post("/internal/pricings/lookup", json={"ids": [cap], "country": "JP"})
    assert untaxed.json()["tax_rates"] == []
    without = await client.post("/internal/pricings/lookup", json={"ids": [coffee]})
    assert (without.json()["tax_rates"], without.json()["country"]) == ([], None)
    problem(
        await client.post("/internal/pricings/lookup", json={"ids": [cap], "country": "XX"}),
        422,
        "unknown_country",
        "country",
    )


async def test_tax_rates_by_code_or_the_country_general_rate(client: httpx.AsyncClient) -> None:
    food = await client.get("/internal/tax-rates", params={"country": "DE", "tax_code": "food"})
    assert [(r["percentage"], r["inclusive"]) for r in food.json()] == [("7", True)]
    general = await client.get("/internal/tax-rates", params={"country": "de", "tax_code": "x"})
    assert [(r["percentage"], r["tax_code"]) for r in general.json()] == [("19", None)]
    swiss = await client.get("/internal/tax-rates", params={"country": "CH"})
    assert [r["percentage"] for r in swiss.json()] == ["8.1"]
    assert (await client.get("/internal/tax-rates", params={"country": "JP"})).json() == []
    problem(
        await client.get("/internal/tax-rates", params={"country": "XX"}),
        422,
        "unknown_country",
        "country",
    )
