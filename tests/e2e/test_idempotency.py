"""Idempotency-Key through the gateway, in both modes (the in-process Redis substitute and
real Redis): a retry gets the first response and changes nothing more."""

from __future__ import annotations

import uuid

import httpx

from tests.e2e.helpers import assert_problem, billing, one_off_price
from tests.e2e.test_checkout import URLS, press, wait_for_order


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def test_a_retried_add_to_cart_adds_once(client: httpx.AsyncClient) -> None:
    price = await one_off_price(client)
    await client.get("/api/store/cart")  # an anonymous shopper with its cookie
    first_line = {"pricing_id": price["id"], "quantity": 1}
    assert (await client.post("/api/store/cart/lines", json=first_line)).status_code == 200
    headers = key()
    line = {"pricing_id": price["id"], "quantity": 2}
    first = await client.post("/api/store/cart/lines", json=line, headers=headers)
    again = await client.post("/api/store/cart/lines", json=line, headers=headers)
    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    cart = (await client.get("/api/store/cart")).json()
    assert [line["quantity"] for line in cart["lines"]] == [3]
    other = await client.post(
        "/api/store/cart/lines", json={**line, "quantity": 5}, headers=headers
    )
    assert_problem(other, 422, "idempotency_key_reused")
    assert [line["quantity"] for line in (await client.get("/api/store/cart")).json()["lines"]] == [
        3
    ]


async def test_retried_billing_checkout_and_pay_return_the_first_answers(
    client: httpx.AsyncClient,
) -> None:
    price = await one_off_price(client)
    assert (
        await client.post("/api/store/cart/lines", json={"pricing_id": price["id"], "quantity": 1})
    ).status_code == 200
    billing_key = key()
    created = await client.post("/api/payments/billing", json=billing(), headers=billing_key)
    again = await client.post("/api/payments/billing", json=billing(), headers=billing_key)
    assert created.status_code == again.status_code == 201 and again.json() == created.json()
    assert len((await client.get("/api/store/customers")).json()) == 1

    checkout_key = key()
    body = {**URLS, "customer_id": created.json()["id"], "shipping": {"method": "standard"}}
    checkout = await client.post("/api/store/checkout", json=body, headers=checkout_key)
    assert checkout.status_code == 200, checkout.text
    replay = await client.post("/api/store/checkout", json=body, headers=checkout_key)
    assert replay.json() == checkout.json()
    order_id = checkout.json()["order"]["id"]

    pay_key = key()
    paid = await client.post(f"/api/store/orders/{order_id}/pay", json=URLS, headers=pay_key)
    assert paid.status_code == 200, paid.text
    retried = await client.post(f"/api/store/orders/{order_id}/pay", json=URLS, headers=pay_key)
    assert retried.json() == paid.json() and retried.headers["idempotent-replayed"] == "true"
    # One open payment: the replayed attempt is the order's only open one, and it pays.
    payment = paid.json()["payment"]
    assert (await press(client, payment["checkout_url"], "pay")).status_code == 303
    await wait_for_order(client, order_id, paid=True)
    closed = await client.post(f"/api/store/orders/{order_id}/pay", json=URLS, headers=key())
    assert_problem(closed, 409, "order_already_paid")
