"""The billing portal through the gateway, with the dev provider: a subscription's owner gets a
link to a page where the card can be changed and the subscription canceled; nobody else does,
and a return URL off the shop's hosts is refused."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.e2e.helpers import assert_problem, billing, recurring_price
from tests.e2e.test_checkout import checkout, press, wait_for_order


async def subscribed(client: httpx.AsyncClient) -> dict[str, Any]:
    price = await recurring_price(client)
    await client.post("/api/store/cart/lines", json={"pricing_id": price["id"], "quantity": 1})
    body = (await checkout(client, billing=billing("DE"))).json()
    await press(client, body["payment"]["checkout_url"], "pay")
    await wait_for_order(client, body["order"]["id"], paid=True)
    for _ in range(100):
        subscriptions = (await client.get("/api/store/subscriptions")).json()
        if subscriptions and subscriptions[0]["status"] == "active":
            return dict(subscriptions[0])
        await asyncio.sleep(0.1)
    raise AssertionError("the subscription never became active")


async def test_the_owner_changes_the_card_and_cancels_in_the_portal(
    client: httpx.AsyncClient,
) -> None:
    subscription = await subscribed(client)

    portal = await client.post(f"/api/store/subscriptions/{subscription['id']}/portal")

    assert portal.status_code == 200, portal.text
    url = portal.json()["url"]
    assert url.startswith(("http://", "https://"))
    path = urlsplit(url).path
    page = await client.get(path)
    assert page.status_code == 200 and 'id="status">active<' in page.text
    assert "Cancel subscription" in page.text
    card = await client.post(f"{path}/card")
    assert card.status_code == 303
    assert "Your card was updated" in (await client.get(card.headers["location"])).text
    canceled = await client.post(f"{path}/cancel")
    assert canceled.status_code == 303
    after = (await client.get(canceled.headers["location"])).text
    assert "ends with the current period" in after and "Cancel subscription" not in after
    [mine] = (await client.get("/api/store/subscriptions")).json()
    assert mine["cancel_at_period_end"] is True and mine["status"] == "active"


async def test_nobody_else_gets_a_portal_and_a_foreign_return_url_is_refused(
    client: httpx.AsyncClient, new_client: Callable[[], httpx.AsyncClient]
) -> None:
    subscription = await subscribed(client)
    async with new_client() as stranger:
        nobody = await stranger.post(f"/api/store/subscriptions/{subscription['id']}/portal")
        await stranger.post("/api/payments/billing", json=billing("FR"))  # another shopper now
        other = await stranger.post(f"/api/store/subscriptions/{subscription['id']}/portal")
    assert nobody.status_code == 401, nobody.text
    assert_problem(other, 404, "subscription_not_found")

    evil = await client.post(
        f"/api/store/subscriptions/{subscription['id']}/portal",
        json={"return_url": "https://evil.example/phish"},
    )
    assert_problem(evil, 422, "invalid_return_url")
    [mine] = (await client.get("/api/store/subscriptions")).json()
    assert mine["cancel_at_period_end"] is False
