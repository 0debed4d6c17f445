"""Stock through the gateway in both modes: the cart refuses more than is on hand, checkout
holds the units, paying sells them (the race and the deadline: tests/e2e/test_stock.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.e2e.helpers import assert_problem, billing
from tests.e2e.test_checkout import checkout, press, wait_for_order
from tests.support.cluster import RunningStore

PRODUCT = "tshirt"  # bought by no other end-to-end test


def admin(store: RunningStore) -> dict[str, str]:
    from gateway.identity import issue_token
    from gateway.settings import DEV_JWT_SECRET

    secret = store.env.get("GATEWAY_JWT_SECRET", DEV_JWT_SECRET)
    return {"authorization": f"Bearer {issue_token('ops', secret=secret, roles=['store:admin'])}"}


async def level(client: httpx.AsyncClient, store: RunningStore) -> dict[str, Any]:
    answer = await client.get(f"/api/admin/products/{PRODUCT}/stock", headers=admin(store))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_held_at_checkout_and_sold_when_paid(
    client: httpx.AsyncClient, store: RunningStore
) -> None:
    url = f"/api/admin/products/{PRODUCT}/stock"
    put = await client.put(url, json={"on_hand": 5}, headers=admin(store))
    assert put.status_code == 200, put.text
    try:
        product = (await client.get(f"/api/store/products/{PRODUCT}")).json()
        price = next(p for p in product["prices"] if p["interval"] is None)
        refused = await client.post(
            "/api/store/cart/lines", json={"pricing_id": price["id"], "quantity": 6}
        )
        assert assert_problem(refused, 409, "out_of_stock")["products"][0]["available"] == 5
        added = await client.post(
            "/api/store/cart/lines", json={"pricing_id": price["id"], "quantity": 2}
        )
        assert added.status_code == 200, added.text
        raised = await client.patch(
            f"/api/store/cart/lines/{added.json()['lines'][0]['line_id']}", json={"quantity": 9}
        )
        assert_problem(raised, 409, "out_of_stock")

        body = await checkout(client, billing=billing("DE"))
        assert body.status_code == 200, body.text
        held = await level(client, store)
        assert (held["on_hand"], held["reserved"], held["available"]) == (5, 2, 3)

        await press(client, body.json()["payment"]["checkout_url"], "pay")
        paid = await wait_for_order(client, body.json()["order"]["id"], paid=True)
        assert paid["backordered"] is False
        for _ in range(50):  # paid and sold in one transaction of orders: at most a moment
            sold = await level(client, store)
            if sold["reserved"] == 0:
                break
            await asyncio.sleep(0.1)
        assert (sold["on_hand"], sold["reserved"], sold["available"]) == (3, 0, 3)
    finally:
        await client.put(url, json={"on_hand": 0, "tracked": False}, headers=admin(store))
