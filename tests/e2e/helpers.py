"""Small builders for end-to-end tests."""

from __future__ import annotations

from typing import Any

import httpx

PROBLEM = "application/problem+json"


async def products(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    """Every product of the catalog, following the cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": 100, **params, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/api/store/products", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


async def one_off_price(client: httpx.AsyncClient, *, skip: int = 0) -> dict[str, Any]:
    prices = [
        p for product in await products(client) for p in product["prices"] if p["interval"] is None
    ]
    return prices[skip]


async def recurring_price(client: httpx.AsyncClient) -> dict[str, Any]:
    prices = [p for product in await products(client) for p in product["prices"] if p["interval"]]
    return prices[0]


def billing(country: str = "DE", **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "address": {
            "line1": "Hauptstraße 1",
            "city": "Berlin",
            "postal_code": "10115",
            "country": country,
        },
        "vat_id": None,
    }
    data.update(overrides)
    return data


def assert_problem(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body = response.json()
    for field in ("type", "title", "status", "code"):
        assert field in body, body
    if code is not None:
        assert body["code"] == code, body
    return body
