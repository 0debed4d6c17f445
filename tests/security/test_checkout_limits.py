"""A cart the payment provider cannot charge is refused at checkout while it is still the
shopper's: 422 naming the limit, the cart as it was, no order, and a retry (with the same
Idempotency-Key) refused the same way until the shopper changes the cart."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx

from tests.e2e.helpers import assert_problem, billing, products
from tests.security.conftest import CHECKOUT, Victim


async def recurring_prices_of_two_intervals(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    """One recurring price per billing interval, two intervals: no single checkout charges both."""
    by_interval: dict[str, dict[str, Any]] = {}
    for product in await products(http):
        for price in product["prices"]:
            if price["interval"]:
                by_interval.setdefault(price["interval"], price)
    assert len(by_interval) >= 2, "the example products have monthly and yearly prices"
    return list(by_interval.values())[:2]


async def test_a_cart_the_provider_cannot_charge_is_refused_before_it_is_frozen(
    shopper: Callable[..., httpx.AsyncClient],
) -> None:
    # Five limited requests in all (the store's per-identity limit): two adds, three checkouts.
    http = shopper()
    victim = Victim(http=http, price={}, customer={})
    for price in await recurring_prices_of_two_intervals(http):
        added = await http.post("/api/store/cart/lines", json={"pricing_id": price["id"]})
        assert added.status_code == 200, added.text
    cart_before = await victim.cart()
    before = await victim.state()
    assert len(cart_before["lines"]) == 2

    body = {"billing": billing(name=f"L {uuid.uuid4().hex}"), **CHECKOUT}
    key = {"idempotency-key": uuid.uuid4().hex}
    refused = await http.post("/api/store/checkout", json=body, headers=key)
    assert_problem(refused, 422, "mixed_intervals")
    # A retry with the same key is refused again: no unpayable order comes back.
    retried = await http.post("/api/store/checkout", json=body, headers=key)
    assert_problem(retried, 422, "mixed_intervals")

    # Nothing changed: the same open cart (same lines and ids), no customer made, no order.
    assert await victim.cart() == cart_before
    assert await victim.state() == before
    assert (await http.get("/api/store/orders")).json()["items"] == []

    # The shopper removes one of the two intervals and checks out that same cart.
    yearly = next(line for line in cart_before["lines"] if line["interval"] == "year")
    removed = await http.delete(f"/api/store/cart/lines/{yearly['line_id']}")
    assert removed.status_code == 200, removed.text
    done = await http.post(
        "/api/store/checkout", json=body, headers={"idempotency-key": uuid.uuid4().hex}
    )
    assert done.status_code in (200, 201), done.text
    order = done.json()["order"]
    assert done.json()["payment"]["checkout_url"]
    ordered = sorted(line["pricing_id"] for line in order["details"]["lines"])
    assert ordered == sorted(
        line["pricing_id"] for line in cart_before["lines"] if line["line_id"] != yearly["line_id"]
    )
    orders = (await http.get("/api/store/orders")).json()["items"]
    assert [o["id"] for o in orders] == [order["id"]]
