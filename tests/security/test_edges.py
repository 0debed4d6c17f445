"""Ids that are dot-segments never reach a service: `.`, `..` and their encodings are refused
at the gateway with a problem, and nothing the shopper owns changes."""

from __future__ import annotations

import json

import pytest

from tests.security.conftest import Victim
from tests.security.test_gateway_attacks import raw_request
from tests.support.cluster import RunningStore

PROBLEM = "application/problem+json"
DOTS = [".", "..", "%2e", "%2E%2e", ".%2e"]


def assert_refused(status: int, headers: dict[str, str], body: bytes) -> None:
    # Refused as a bad or unknown id, never a server error or another route's answer.
    assert status in (404, 422), (status, body[:300])
    assert headers.get("content-type", "").startswith(PROBLEM), headers
    assert json.loads(body)["status"] == status


@pytest.mark.parametrize("dots", DOTS)
async def test_dot_segment_ids_are_refused_and_change_nothing(
    store: RunningStore, victim: Victim, dots: str
) -> None:
    before = await victim.state()
    cart = await victim.cart()
    line = cart["lines"][0]["line_id"]
    paths = [
        ("GET", f"/api/store/orders/{dots}"),
        ("POST", f"/api/store/orders/{dots}/pay"),
        ("GET", f"/api/store/products/{dots}"),
        ("PATCH", f"/api/store/cart/lines/{dots}"),
        ("DELETE", f"/api/store/cart/lines/{dots}"),
        ("DELETE", f"/api/store/customers/{dots}"),
        ("POST", f"/api/store/customers/{dots}/default"),
        ("GET", f"/api/store/organizations/{dots}/customers"),
        ("POST", f"/api/store/subscriptions/{dots}/cancel"),
    ]
    # The victim's own cookie and address: the path goes out exactly as written.
    headers = {
        "cookie": "; ".join(f"{name}={value}" for name, value in victim.http.cookies.items()),
        "x-forwarded-for": victim.http.headers["x-forwarded-for"],
        "content-type": "application/json",
    }
    for method, path in paths:
        body = b'{"quantity": 3}' if method in ("PATCH", "POST") else None
        assert_refused(*raw_request(store, method, path, body, headers))
    assert await victim.state() == before
    assert (await victim.cart())["lines"][0]["line_id"] == line


async def test_checkout_with_a_dot_segment_customer_id_is_refused(victim: Victim) -> None:
    before = await victim.state()
    for dots in (".", ".."):
        response = await victim.http.post(
            "/api/store/checkout",
            json={
                "customer_id": dots,
                "success_url": "https://shop.example/thanks",
                "cancel_url": "https://shop.example/cart",
            },
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith(PROBLEM)
    assert await victim.state() == before


async def test_an_id_with_dots_inside_is_still_an_id(victim: Victim) -> None:
    response = await victim.http.get("/api/store/orders/a.b")
    assert response.status_code == 404, response.text
