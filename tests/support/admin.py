"""Builders for tests of the admin API: operator tokens and a paid order with goods to ship."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import httpx

from gateway.identity import ADMIN_ROLE, issue_token
from gateway.settings import DEV_JWT_SECRET
from tests.e2e.helpers import billing, products


def admin_headers(secret: str = DEV_JWT_SECRET, user: str = "ops@shop.example") -> dict[str, str]:
    """An operator's bearer token, signed like `store token USER --role store:admin`."""
    return {"authorization": f"Bearer {issue_token(user, secret=secret, roles=[ADMIN_ROLE])}"}


def return_urls(client: httpx.AsyncClient) -> dict[str, str]:
    """Return URLs on the store's own origin, which every store accepts."""
    base = str(client.base_url).rstrip("/")
    return {"success_url": f"{base}/shop/thanks", "cancel_url": f"{base}/shop/cart"}


async def shippable_price(client: httpx.AsyncClient) -> dict[str, Any]:
    """A one-off price of a product that ships."""
    return next(
        price
        for product in await products(client)
        if product.get("shippable")
        for price in product["prices"]
        if price["interval"] is None
    )


async def paid_order(client: httpx.AsyncClient, *, quantity: int = 3) -> dict[str, Any]:
    """A fresh shopper's paid order of `quantity` units of one shippable product."""
    price = await shippable_price(client)
    added = await client.post(
        "/api/store/cart/lines", json={"pricing_id": price["id"], "quantity": quantity}
    )
    assert added.status_code == 200, added.text
    response = await client.post(
        "/api/store/checkout",
        json={**return_urls(client), "billing": billing("DE"), "shipping": {"method": "standard"}},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    path = urlsplit(body["payment"]["checkout_url"]).path
    assert (await client.get(path)).status_code == 200
    await client.post(f"{path}/pay")
    order_id = body["order"]["id"]
    for _ in range(150):
        order = (await client.get(f"/api/store/orders/{order_id}")).json()
        if order.get("paid"):
            return dict(order)
        await asyncio.sleep(0.1)
    raise AssertionError(f"order {order_id} was never paid: {order}")
