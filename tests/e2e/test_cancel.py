"""Canceling an unpaid order, by its shopper or an operator, through the gateway in both modes:
it is never paid afterwards, and its open checkout closes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from tests.e2e.conftest import admin_headers, token_for
from tests.e2e.helpers import assert_problem, billing
from tests.e2e.test_checkout import checkout, fill_cart, press, wait_for_order
from tests.support.cluster import RunningStore


async def unpaid_order(client: httpx.AsyncClient) -> dict[str, Any]:
    await fill_cart(client)
    response = await checkout(client, billing=billing("DE"))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def wait_for_attempt(client: httpx.AsyncClient, order_id: str, status: str) -> None:
    for _ in range(100):
        order = (await client.get(f"/api/store/orders/{order_id}")).json()
        if (order.get("payment") or {}).get("status") == status:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the payment of {order_id} never became {status}: {order}")


async def test_a_shopper_cancels_an_unpaid_order_and_it_can_no_longer_be_paid(
    client: httpx.AsyncClient,
) -> None:
    started = await unpaid_order(client)
    order_id = started["order"]["id"]

    response = await client.post(f"/api/store/orders/{order_id}/cancel")
    assert response.status_code == 200, response.text
    canceled = response.json()
    assert canceled["status"] == "canceled" and canceled["canceled_at"] and not canceled["paid"]
    shown = (await client.get(f"/api/store/orders/{order_id}")).json()
    assert shown["status"] == "canceled"

    assert_problem(await client.post(f"/api/store/orders/{order_id}/cancel"), 409, "order_canceled")
    pay_again = await client.post(
        f"/api/store/orders/{order_id}/pay",
        json={"success_url": "https://shop.example/t", "cancel_url": "https://shop.example/c"},
    )
    assert_problem(pay_again, 409, "order_canceled")
    # Payments hears of it and closes the checkout: its Pay button no longer pays.
    await wait_for_attempt(client, order_id, "canceled")
    pressed = await press(client, started["payment"]["checkout_url"], "pay")
    assert pressed.status_code >= 400
    await asyncio.sleep(0.3)
    final = (await client.get(f"/api/store/orders/{order_id}")).json()
    assert final["status"] == "canceled" and final["paid"] is None


async def test_a_paid_order_cannot_be_canceled(client: httpx.AsyncClient) -> None:
    started = await unpaid_order(client)
    order_id = started["order"]["id"]
    await press(client, started["payment"]["checkout_url"], "pay")
    await wait_for_order(client, order_id, paid=True)

    assert_problem(
        await client.post(f"/api/store/orders/{order_id}/cancel"), 409, "order_already_paid"
    )
    assert (await client.get(f"/api/store/orders/{order_id}")).json()["status"] == "paid"


async def test_nobody_else_can_cancel_a_shoppers_order(
    store: RunningStore, client: httpx.AsyncClient, new_client: Callable[[], httpx.AsyncClient]
) -> None:
    order_id = (await unpaid_order(client))["order"]["id"]
    stranger = new_client()
    await stranger.get("/api/store/cart")  # a cookie of its own
    assert_problem(await stranger.post(f"/api/store/orders/{order_id}/cancel"), 401)
    await fill_cart(stranger)
    assert_problem(await stranger.post(f"/api/store/orders/{order_id}/cancel"), 404)
    user = {"authorization": f"Bearer {token_for(store, 'someone-else')}"}
    assert_problem(await stranger.post(f"/api/store/orders/{order_id}/cancel", headers=user), 404)
    # Nor through the admin API without the role.
    assert_problem(await stranger.post(f"/api/admin/orders/{order_id}/cancel", headers=user), 403)
    assert_problem(await stranger.post(f"/api/admin/orders/{order_id}/cancel"), 401)
    assert (await client.get(f"/api/store/orders/{order_id}")).json()["status"] == "pending"


async def test_an_operator_cancels_any_unpaid_order(
    store: RunningStore, client: httpx.AsyncClient, new_client: Callable[[], httpx.AsyncClient]
) -> None:
    order_id = (await unpaid_order(client))["order"]["id"]
    operator = new_client()
    response = await operator.post(
        f"/api/admin/orders/{order_id}/cancel",
        json={"reason": "out of stock at the supplier"},
        headers=admin_headers(store),
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "canceled"
    shown = (await client.get(f"/api/store/orders/{order_id}")).json()
    assert shown["status"] == "canceled"
    again = await operator.post(
        f"/api/admin/orders/{order_id}/cancel", headers=admin_headers(store)
    )
    assert_problem(again, 409, "order_canceled")
