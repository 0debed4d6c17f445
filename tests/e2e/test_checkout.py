"""Checkout to paid through the gateway, with the dev payment provider."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.e2e.conftest import token_for
from tests.e2e.helpers import assert_problem, billing, one_off_price, recurring_price
from tests.support.cluster import RunningStore

URLS = {"success_url": "https://shop.example/thanks", "cancel_url": "https://shop.example/cart"}
SHIPPING = {"shipping": {"method": "standard"}}


async def fill_cart(client: httpx.AsyncClient, quantity: int = 2) -> dict[str, Any]:
    price = await one_off_price(client)
    response = await client.post(
        "/api/store/cart/lines", json={"pricing_id": price["id"], "quantity": quantity}
    )
    assert response.status_code == 200, response.text
    return price


async def checkout(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    # The example products ship: standard shipping, to the billing address, unless told.
    return await client.post("/api/store/checkout", json={**URLS, **SHIPPING, **body})


async def press(client: httpx.AsyncClient, checkout_url: str, button: str) -> httpx.Response:
    """Press Pay or Decline on the dev provider's hosted page."""
    path = urlsplit(checkout_url).path
    page = await client.get(path)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    return await client.post(f"{path}/{button}")


async def wait_for_order(
    client: httpx.AsyncClient, order_id: str, *, paid: bool, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    for _ in range(100):
        order = (await client.get(f"/api/store/orders/{order_id}", headers=headers)).json()
        if (order.get("paid") is not None) == paid:
            return order
        await asyncio.sleep(0.1)
    raise AssertionError(f"order {order_id} never became paid={paid}: {order}")


async def test_anonymous_checkout_then_pay_shows_the_order_paid(client: httpx.AsyncClient) -> None:
    price = await fill_cart(client, quantity=2)
    response = await checkout(client, billing=billing("DE"))
    assert response.status_code == 200, response.text
    body = response.json()
    order, payment = body["order"], body["payment"]
    assert payment["status"] == "unpaid" and payment["attempt_id"] and payment["checkout_url"]
    assert order["paid"] is None and order["currency"] == price["currency"]
    details = order["details"]
    lines_total = sum(line["total"] for line in details["lines"])
    assert lines_total + details["shipping"]["total"] == details["total"] == order["total"]
    assert details["lines"][0]["quantity"] == 2

    redirect = await press(client, payment["checkout_url"], "pay")
    assert redirect.status_code == 303 and redirect.headers["location"] == URLS["success_url"]
    paid = await wait_for_order(client, order["id"], paid=True)
    assert paid["details"] == details, "details never change after purchase"

    archive = (await client.get("/api/store/orders", params={"paid": "true"})).json()
    assert order["id"] in [o["id"] for o in archive["items"]]
    unpaid = (await client.get("/api/store/orders", params={"paid": "false"})).json()
    assert order["id"] not in [o["id"] for o in unpaid["items"]]
    # The cart was used up: the next add starts a new cart.
    assert (await client.get("/api/store/cart")).json()["lines"] == []


async def test_declined_then_paid_again(client: httpx.AsyncClient) -> None:
    await fill_cart(client)
    body = (await checkout(client, billing=billing("FR"))).json()
    order_id = body["order"]["id"]
    declined = await press(client, body["payment"]["checkout_url"], "decline")
    assert declined.status_code == 303 and declined.headers["location"] == URLS["cancel_url"]
    await wait_for_order(client, order_id, paid=False)

    again = await client.post(f"/api/store/orders/{order_id}/pay", json=URLS)
    assert again.status_code == 200, again.text
    second = again.json()["payment"]
    assert second["attempt_id"] != body["payment"]["attempt_id"]
    await press(client, second["checkout_url"], "pay")
    await wait_for_order(client, order_id, paid=True)
    assert_problem(await client.post(f"/api/store/orders/{order_id}/pay", json=URLS), 409)


async def test_a_delayed_payment_is_processing_and_settles_without_a_second_one(
    client: httpx.AsyncClient,
) -> None:
    await fill_cart(client)
    body = (await checkout(client, billing=billing("DE"))).json()
    order_id, attempt_id = body["order"]["id"], body["payment"]["attempt_id"]
    later = await press(client, body["payment"]["checkout_url"], "pay-later")
    assert later.status_code == 303 and later.headers["location"] == URLS["success_url"]
    order = (await client.get(f"/api/store/orders/{order_id}")).json()
    assert order["paid"] is None
    assert order["payment"] == {"attempt_id": attempt_id, "status": "processing"}
    again = await client.post(f"/api/store/orders/{order_id}/pay", json=URLS)
    assert_problem(again, 409, "payment_processing")
    settled = await client.post(f"{urlsplit(body['payment']['checkout_url']).path}/settle")
    assert settled.status_code == 200 and settled.json()["status"] == "paid", settled.text
    paid = await wait_for_order(client, order_id, paid=True)
    assert paid["payment"] == {"attempt_id": attempt_id, "status": "paid"}
    assert_problem(await client.post(f"/api/store/orders/{order_id}/pay", json=URLS), 409)


async def test_a_refused_delayed_payment_can_be_paid_again(client: httpx.AsyncClient) -> None:
    await fill_cart(client)
    body = (await checkout(client, billing=billing("FR"))).json()
    order_id, path = body["order"]["id"], urlsplit(body["payment"]["checkout_url"]).path
    await press(client, body["payment"]["checkout_url"], "pay-later")
    order = (await client.get(f"/api/store/orders/{order_id}")).json()
    assert order["payment"]["status"] == "processing"
    refused = await client.post(f"{path}/refuse")
    assert refused.status_code == 200 and refused.json()["status"] == "failed", refused.text
    again = await client.post(f"/api/store/orders/{order_id}/pay", json=URLS)
    assert again.status_code == 200, again.text
    await press(client, again.json()["payment"]["checkout_url"], "pay")
    await wait_for_order(client, order_id, paid=True)


async def test_checkout_retry_is_idempotent_and_racing_checkouts_make_one_order(
    client: httpx.AsyncClient,
) -> None:
    await fill_cart(client)
    await client.post("/api/payments/billing", json=billing("DE"))
    first, second = await asyncio.gather(checkout(client), checkout(client))
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert first.json()["order"]["id"] == second.json()["order"]["id"]
    retry = await checkout(client)
    assert retry.status_code == 200 and retry.json()["order"]["id"] == first.json()["order"]["id"]


async def test_empty_cart_and_missing_billing_are_refused(new_client) -> None:  # type: ignore[no-untyped-def]
    shopper = new_client()
    await fill_cart(shopper)
    assert_problem(await checkout(shopper), 422)  # no billing information yet
    empty = new_client()
    await empty.post("/api/payments/billing", json=billing("DE"))
    assert_problem(await checkout(empty), 422, "cart_empty")
    assert_problem(await checkout(empty, billing=billing("XX")), 422)
    nul = billing("DE", name="Ada\x00Lovelace")
    assert_problem(await empty.post("/api/payments/billing", json=nul), 422)


async def test_orders_and_customers_belong_to_their_owner(
    new_client,
    store: RunningStore,  # type: ignore[no-untyped-def]
) -> None:
    owner, stranger = new_client(), new_client()
    await fill_cart(owner)
    order = (await checkout(owner, billing=billing("DE"))).json()["order"]
    customer_id = order["customer_id"]
    await stranger.post("/api/payments/billing", json=billing("FR"))
    assert_problem(await stranger.get(f"/api/store/orders/{order['id']}"), 404)
    assert_problem(await stranger.delete(f"/api/store/customers/{customer_id}"), 404)
    assert order["id"] not in [
        o["id"] for o in (await stranger.get("/api/store/orders")).json()["items"]
    ]
    outsider = {"authorization": f"Bearer {token_for(store, 'outsider', orgs=['other'])}"}
    assert_problem(
        await stranger.get("/api/store/organizations/acme/customers", headers=outsider), 403
    )


async def test_login_moves_anonymous_orders_and_customers_to_the_user(
    client: httpx.AsyncClient, store: RunningStore
) -> None:
    await fill_cart(client)
    order = (await checkout(client, billing=billing("DE"))).json()["order"]
    auth = {"authorization": f"Bearer {token_for(store, f'u-{uuid.uuid4().hex[:8]}')}"}
    await client.get("/api/store/cart", headers=auth)  # merge on login
    client.cookies.clear()
    # Orders and payments each handle the merge event on their own: wait for both.
    for _ in range(100):
        mine = (await client.get("/api/store/orders", headers=auth)).json()["items"]
        customers = (await client.get("/api/store/customers", headers=auth)).json()
        if order["id"] in [o["id"] for o in mine] and customers:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the anonymous order and customer never became the user's")
    assert [c["is_default"] for c in customers].count(True) == 1


async def test_subscription_checkout_and_renewal(client: httpx.AsyncClient) -> None:
    price = await recurring_price(client)
    await client.post("/api/store/cart/lines", json={"pricing_id": price["id"], "quantity": 1})
    cart = (await client.get("/api/store/cart")).json()
    assert cart["starts_subscription"] is True
    body = (await checkout(client, billing=billing("DE"))).json()
    await press(client, body["payment"]["checkout_url"], "pay")
    await wait_for_order(client, body["order"]["id"], paid=True)
    for _ in range(100):
        subscriptions = (await client.get("/api/store/subscriptions")).json()
        if subscriptions and subscriptions[0]["status"] == "active":
            break
        await asyncio.sleep(0.1)
    subscription = subscriptions[0]
    assert subscription["order_id"] == body["order"]["id"]
    renewed = await client.post(
        f"/api/payments/dev-checkout/subscriptions/{subscription['id']}/renew"
    )
    assert renewed.status_code in (200, 204, 303), renewed.text
    for _ in range(100):
        after = (await client.get("/api/store/subscriptions")).json()[0]
        if after["current_period_end"] != subscription["current_period_end"]:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the renewal never showed")
    # The renewal is an order of its own in the shopper's history: paid, linked, and what
    # was charged — the coffee ships, so its shipping is paid again each period.
    first = body["order"]
    for _ in range(100):
        history = (await client.get("/api/store/orders")).json()["items"]
        renewals = [o for o in history if (o.get("renewal") or {}).get("first_order_id")]
        if renewals:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the renewal order never showed")
    [renewal] = renewals
    assert history[0]["id"] == renewal["id"] != first["id"]
    assert renewal["paid"] is not None and renewal["number"] != first["number"]
    link = renewal["renewal"]
    assert (link["subscription_id"], link["first_order_id"]) == (subscription["id"], first["id"])
    assert link["amount_differs"] is False and link["period_end"] == after["current_period_end"]
    assert renewal["total"] == subscription["amount"] == first["total"]
    assert renewal["details"]["shipping"] == first["details"]["shipping"] is not None
    assert [line["pricing_id"] for line in renewal["details"]["lines"]] == [price["id"]]
    assert renewal["details"]["tax"] == first["details"]["tax"]
    shown = (await client.get(f"/api/store/orders/{renewal['id']}")).json()
    assert shown["renewal"] == link
    assert (await client.get(f"/api/store/orders/{first['id']}")).json()["renewal"] is None
    canceled = await client.post(f"/api/store/subscriptions/{subscription['id']}/cancel")
    assert canceled.status_code == 200 and canceled.json()["cancel_at_period_end"] is True


async def test_exclusive_tax_is_added_to_the_total_and_charged(client: httpx.AsyncClient) -> None:
    price = await fill_cart(client, quantity=3)
    body = (await checkout(client, billing=billing("CA"))).json()
    details = body["order"]["details"]
    subtotal = 3 * price["unit_amount"]
    tax = (subtotal * 5 + 50) // 100  # 5 % GST, exclusive, half up
    assert details["subtotal"] == subtotal and details["tax"] == tax
    assert details["total"] == body["order"]["total"] == subtotal + tax
    assert [line["amount"] for line in details["tax_lines"]] == [tax]
    await press(client, body["payment"]["checkout_url"], "pay")
    await wait_for_order(client, body["order"]["id"], paid=True)
