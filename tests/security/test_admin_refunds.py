"""`POST /api/admin/orders/{id}/refunds` refuses whoever is not an admin, in both modes: no
token 401, a token signed with another key 401, a shopper's token (and an anonymous cookie)
403; none of them refunds anything, whatever Idempotency-Key they send."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateway.identity import ADMIN_ROLE, issue_token
from gateway.settings import DEV_JWT_SECRET
from tests.e2e.helpers import assert_problem, billing, one_off_price
from tests.e2e.test_checkout import press, wait_for_order
from tests.security.conftest import CHECKOUT
from tests.support.cluster import RunningStore


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def secret_of(store: RunningStore) -> str:
    return store.env.get("GATEWAY_JWT_SECRET", DEV_JWT_SECRET)


async def paid_order(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.post("/api/store/checkout", json={**CHECKOUT, "billing": billing("DE")})
    assert response.status_code == 200, response.text
    body = response.json()
    await press(http, body["payment"]["checkout_url"], "pay")
    return await wait_for_order(http, body["order"]["id"], paid=True)


@pytest.mark.parametrize("who", ["nobody", "forged_admin", "shopper", "anonymous_cookie"])
async def test_only_an_admin_refunds(
    who: str, store: RunningStore, shopper: Callable[..., httpx.AsyncClient]
) -> None:
    owner = shopper(**bearer(issue_token(f"u-{uuid.uuid4().hex[:8]}", secret=secret_of(store))))
    price = await one_off_price(owner)
    assert (await owner.post("/api/store/cart/lines", json={"pricing_id": price["id"]})).is_success
    order = await paid_order(owner)

    headers: dict[str, str] = {}
    if who == "forged_admin":
        headers = bearer(issue_token("mallory", secret="x" * 48, roles=[ADMIN_ROLE]))
    elif who == "shopper":  # the order's own owner, with a token that lacks the role
        headers = dict(owner.headers)
    attacker = shopper(**headers)
    if who == "anonymous_cookie":
        # A shopper of its own, with a cart and so an anonymous cookie.
        await attacker.post("/api/store/cart/lines", json={"pricing_id": price["id"]})
        assert attacker.cookies
    expected = {"nobody": 401, "forged_admin": 401, "shopper": 403, "anonymous_cookie": 401}
    for body in ({"reason": "x"}, {"reason": "x", "amount": 1}, {"reason": "x", "lines": []}):
        answer = await attacker.post(
            f"/api/admin/orders/{order['id']}/refunds",
            json=body,
            headers={"idempotency-key": str(uuid.uuid4())},
        )
        assert_problem(answer, expected[who])

    # Nothing was refunded: an admin can still refund all of it.
    admin = shopper(**bearer(issue_token("operator", secret=secret_of(store), roles=[ADMIN_ROLE])))
    full = await admin.post(f"/api/admin/orders/{order['id']}/refunds", json={"reason": "check"})
    assert (full.status_code, full.json()["amount"]) == (201, order["total"]), full.text
