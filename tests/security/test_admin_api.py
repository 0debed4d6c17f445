"""Attacks on the admin API (`/api/admin/*`), in both modes.

Every admin route is found from the app's own routes, so a route added later is attacked too:
no token is 401, a shopper's token is 403, an admin token signed with another key or whose
`roles` is not a list is 401, and the dev login cannot mint an admin token. The writes that
were refused changed nothing; an operator's token works.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from gateway.admin_router import PREFIX, api_routes, is_admin_path
from gateway.identity import ADMIN_ROLE, issue_token
from gateway.settings import DEV_JWT_SECRET
from tests.e2e.helpers import PROBLEM
from tests.support.admin import admin_headers, paid_order
from tests.support.cluster import RunningStore

# The admin API's description is public, like the store API's (`store openapi --admin` prints
# it too): it tells what exists, never what is in the shop.
PUBLIC = {f"{PREFIX}/openapi.json"}
# One body that every admin write accepts the shape of (unknown fields are ignored), so a
# refusal is the credential's doing and not the body's.
BODY = {
    "carrier": "Evil Express",
    "tracking_number": "666",
    "reason": "mallory",
    "amount": 1,
    "on_hand": 0,
}


@dataclass
class Target:
    """The store under attack, a shopper of it with a paid order, and the admin routes."""

    store: RunningStore
    http: httpx.AsyncClient
    routes: list[tuple[str, str]]

    @property
    def admin(self) -> dict[str, str]:
        return admin_headers(self.store.env.get("GATEWAY_JWT_SECRET", DEV_JWT_SECRET))


@pytest.fixture(scope="module")
def routes() -> list[tuple[str, str]]:
    from gateway.app import create_app

    return admin_routes(create_app())


@pytest.fixture
async def target(
    store: RunningStore,
    shopper: Callable[..., httpx.AsyncClient],
    routes: list[tuple[str, str]],
) -> Target:
    return Target(store=store, http=shopper(), routes=routes)


def admin_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every admin route the gateway serves."""
    found = [
        (method, route.path)
        for route in api_routes(app)
        if is_admin_path(route.path) and route.path not in PUBLIC
        for method in sorted(route.methods or ())
    ]
    assert found, "no admin routes found"
    return found


def filled(path: str, order_id: str) -> str:
    """The path with every parameter set to the order's id (or a product key)."""
    return re.sub(r"\{[^}]+\}", order_id, path)


def token(claims: dict[str, Any], secret: str = DEV_JWT_SECRET) -> dict[str, str]:
    now = int(time.time())
    body = {"sub": "mallory", "iat": now, "exp": now + 600, **claims}
    return {"authorization": f"Bearer {jwt.encode(body, secret, algorithm='HS256')}"}


def attacks(secret: str) -> dict[str, tuple[dict[str, str], int]]:
    """Credentials that must not open the admin API, and the status each gets."""
    return {
        "no token": ({}, 401),
        "not a bearer token": ({"authorization": "Basic b3BzOm9wcw=="}, 401),
        "a shopper's token": (token({}, secret), 403),
        "a shopper's token with other roles": (token({"roles": ["store:shopper"]}, secret), 403),
        "an admin token signed with another key": (
            token({"roles": [ADMIN_ROLE]}, secret="another-key-" + "x" * 32),
            401,
        ),
        "roles that are not a list": (token({"roles": ADMIN_ROLE}, secret), 401),
        "roles that are a list of lists": (token({"roles": [[ADMIN_ROLE]]}, secret), 401),
        "an unsigned admin token": (
            {
                "authorization": "Bearer "
                + jwt.encode({"sub": "m", "roles": [ADMIN_ROLE]}, None, "none")
            },
            401,
        ),
    }


async def test_every_admin_route_refuses_callers_without_the_admin_role(target: Target) -> None:
    order = await paid_order(target.http)
    http, admin = target.http, target.admin
    before = (await http.get(f"{PREFIX}/orders/{order['id']}", headers=admin)).json()

    secret = target.store.env.get("GATEWAY_JWT_SECRET", DEV_JWT_SECRET)
    for attack, (headers, status) in attacks(secret).items():
        for method, path in target.routes:
            response = await http.request(
                method,
                filled(path, order["id"]),
                headers=headers,
                json=BODY if method in ("POST", "PUT", "PATCH") else None,
            )
            assert response.status_code == status, (attack, method, path, response.text)
            assert response.headers["content-type"].startswith(PROBLEM)
            assert order["number"] not in response.text  # nothing of the order leaks

    after = (await http.get(f"{PREFIX}/orders/{order['id']}", headers=admin)).json()
    assert after == before
    assert after["fulfillments"] == [] and after["fulfillment_status"] == "unfulfilled"


async def test_the_dev_login_never_mints_an_admin_token(target: Target) -> None:
    minted = await target.http.post(
        "/api/dev/token", json={"user_id": "mallory", "roles": [ADMIN_ROLE]}
    )
    if target.store.mode == "distributed":
        # Not served there unless asked for (GATEWAY_STOREFRONT_DEV_LOGIN).
        assert minted.status_code == 404, minted.text
        return
    assert minted.status_code == 200, minted.text
    claims = jwt.decode(minted.json()["token"], options={"verify_signature": False})
    assert ADMIN_ROLE not in (claims.get("roles") or [])
    headers = {"authorization": f"Bearer {minted.json()['token']}"}
    assert (await target.http.get(f"{PREFIX}/orders", headers=headers)).status_code == 403


async def test_an_admin_token_works(target: Target) -> None:
    order = await paid_order(target.http)
    admin = target.admin
    listed = await target.http.get(f"{PREFIX}/orders", headers=admin, params={"status": "paid"})
    assert listed.status_code == 200, listed.text
    assert order["id"] in [o["id"] for o in listed.json()["items"]]
    shown = await target.http.get(f"{PREFIX}/orders/{order['number']}", headers=admin)
    assert shown.status_code == 200, shown.text
    assert shown.json()["id"] == order["id"]
    assert [a["status"] for a in shown.json()["payments"]] == ["paid"]
    # A shopper's token that is also an admin's is an admin's: the role decides.
    secret = target.store.env.get("GATEWAY_JWT_SECRET", DEV_JWT_SECRET)
    both = {"authorization": f"Bearer {issue_token('ops', secret=secret, roles=[ADMIN_ROLE, 'x'])}"}
    assert (await target.http.get(f"{PREFIX}/orders", headers=both)).status_code == 200


def test_the_admin_routes_are_documented_apart_from_the_store_api() -> None:
    from gateway.admin_router import admin_openapi
    from gateway.app import create_app

    app = create_app()
    admin, shop = admin_openapi(app)["paths"], app.openapi()["paths"]
    assert {f"{PREFIX}/orders", f"{PREFIX}/orders/{{order_id}}/fulfillments"} <= set(admin)
    assert all(is_admin_path(path) for path in admin)
    assert not any(is_admin_path(path) for path in shop) and "/api/store/cart/lines" in shop


async def test_an_operator_with_a_shoppers_cookie_takes_nothing_of_the_shopper(
    target: Target,
) -> None:
    """The anonymous cookie plays no part in the admin API: an operator's token sent beside a
    shopper's cookie (one browser for both) never merges that shopper into the operator."""
    order = await paid_order(target.http)
    for method, path in target.routes:
        # A body no admin write accepts: every dependency runs, nothing is changed.
        response = await target.http.request(
            method,
            filled(path, order["id"]),
            headers=target.admin,
            json=[] if method in ("POST", "PUT", "PATCH") else None,
        )
        assert response.status_code in (200, 404, 422), (method, path, response.text)
        assert "set-cookie" not in response.headers, (method, path)
    mine = await target.http.get(f"/api/store/orders/{order['id']}")
    assert mine.status_code == 200, mine.text
    assert mine.json()["owner"] == order["owner"]
