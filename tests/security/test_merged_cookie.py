"""A copy of the anonymous cookie taken before its shopper logged in, used after the merge, in
both modes: it is no identity any more. It cannot see or add to the cart that moved to the
user, nor check out into the user's account, and no answer to it names the user."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from itsdangerous import URLSafeTimedSerializer

from tests.e2e.helpers import assert_problem, billing, one_off_price
from tests.security.conftest import (
    CHECKOUT,
    LIMITS,
    NEW_CARTS_PER_ADDRESS,
    Victim,
    random_address,
)
from tests.support.cluster import RunningStore, embedded

COOKIE = "store_anon"


def anonymous_id_of(value: str) -> str:
    """The anonymous id inside a cookie value (the signature is not checked here)."""
    return str(URLSafeTimedSerializer("x", salt="store.anonymous").loads_unsafe(value)[1])


class Merged:
    """The victim logged in (and so merged) after the attacker copied its cookie."""

    def __init__(self, store: RunningStore, victim: Victim, stolen: str, user_id: str) -> None:
        self.store, self.victim, self.stolen, self.user_id = store, victim, stolen, user_id

    def attacker(
        self, shopper: Callable[..., httpx.AsyncClient], **headers: str
    ) -> httpx.AsyncClient:
        http = shopper(**headers)
        # Host-only, as the gateway set it: a cookie the gateway sends replaces this one.
        http.cookies.set(COOKIE, self.stolen, domain=httpx.URL(self.store.base_url).host)
        return http

    async def user_state(self) -> tuple[Any, ...]:
        return await self.victim.state()


@pytest.fixture
async def merged(store: RunningStore, victim: Victim) -> AsyncIterator[Merged]:
    from tests.e2e.conftest import token_for

    stolen = victim.http.cookies[COOKIE]
    user_id = f"merged-{uuid.uuid4().hex}"
    victim.http.headers["authorization"] = f"Bearer {token_for(store, user_id)}"
    cart = await victim.cart()  # the first request with both: the merge
    assert [line["pricing_id"] for line in cart["lines"]] == [victim.price["id"]]
    assert COOKIE not in victim.http.cookies  # the gateway cleared it
    await until_the_user_owns(victim, victim.customer["id"])
    yield Merged(store, victim, stolen, user_id)


async def until_the_user_owns(victim: Victim, customer_id: str) -> None:
    """Payments re-owns the shopper's customers on the merge event (at once when embedded)."""
    for _ in range(100):
        customers = (await victim.http.get("/api/store/customers")).json()
        if customer_id in [customer["id"] for customer in customers]:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the merge did not reach payments: {customers}")


def assert_no_user_id(response: httpx.Response, user_id: str) -> None:
    assert user_id not in response.text, response.text
    assert user_id not in str(response.headers), response.headers


async def test_a_copied_cookie_after_the_merge_reads_nothing_and_is_cleared(
    merged: Merged, shopper: Callable[..., httpx.AsyncClient]
) -> None:
    before = await merged.user_state()
    attacker = merged.attacker(shopper)
    for path in ("/api/store/cart", "/api/store/orders", "/api/store/customers"):
        response = await attacker.get(path)
        assert response.status_code in (200, 401), response.text
        assert_no_user_id(response, merged.user_id)
        # The dead cookie is removed from the browser that holds it.
        assert f"{COOKIE}=" in response.headers.get("set-cookie", ""), path
        attacker.cookies.set(COOKIE, merged.stolen, domain=attacker.base_url.host)
    assert (await attacker.get("/api/store/cart")).json()["lines"] == []
    assert await merged.user_state() == before


async def test_a_copied_cookie_after_the_merge_adds_to_a_new_cart_not_the_users(
    merged: Merged, shopper: Callable[..., httpx.AsyncClient]
) -> None:
    before = await merged.user_state()
    attacker = merged.attacker(shopper)
    other = await one_off_price(attacker, skip=1)
    added = await attacker.post("/api/store/cart/lines", json={"pricing_id": other["id"]})
    assert added.status_code == 200, added.text
    assert_no_user_id(added, merged.user_id)
    fresh = added.cookies.get(COOKIE)
    assert fresh, added.headers
    # A new anonymous shopper, not the merged one.
    assert anonymous_id_of(fresh) != anonymous_id_of(merged.stolen)
    assert [line["pricing_id"] for line in added.json()["lines"]] == [other["id"]]
    assert await merged.user_state() == before


async def test_a_copied_cookie_after_the_merge_counts_as_a_new_cart_in_the_rate_limits(
    merged: Merged, shopper: Callable[..., httpx.AsyncClient]
) -> None:
    """Each write with the dead cookie starts a new cart, so it is limited as new carts are
    (per address), not as the writes of a shopper with a cart."""
    address = random_address()
    pricing_id = merged.victim.price["id"]
    statuses = []
    for _ in range(NEW_CARTS_PER_ADDRESS + 2):
        attacker = merged.attacker(shopper, **{"x-forwarded-for": address})
        added = await attacker.post("/api/store/cart/lines", json={"pricing_id": pricing_id})
        statuses.append(added.status_code)
    assert statuses == [200] * NEW_CARTS_PER_ADDRESS + [429] * 2


async def test_a_copied_cookie_after_the_merge_cannot_check_out(
    merged: Merged, shopper: Callable[..., httpx.AsyncClient]
) -> None:
    before = await merged.user_state()
    for body in ({**CHECKOUT, "customer_id": merged.victim.customer["id"]}, billed()):
        attacker = merged.attacker(shopper)
        checkout = await attacker.post("/api/store/checkout", json=body)
        assert_problem(checkout, 401, "anonymous_identity_merged")
        assert_no_user_id(checkout, merged.user_id)
    assert await merged.user_state() == before


async def test_what_a_copied_cookie_adds_and_buys_lands_nowhere_near_the_user(
    merged: Merged, shopper: Callable[..., httpx.AsyncClient]
) -> None:
    before = await merged.user_state()
    attacker = merged.attacker(shopper)
    added = await attacker.post(
        "/api/store/cart/lines", json={"pricing_id": merged.victim.price["id"]}
    )
    assert added.status_code == 200, added.text
    checkout = await attacker.post("/api/store/checkout", json=billed())
    # Whatever the attacker buys is its own: a new shopper's order, never the user's.
    assert checkout.status_code == 200, checkout.text
    assert_no_user_id(checkout, merged.user_id)
    assert checkout.json()["order"]["owner"]["kind"] == "anonymous"
    assert await merged.user_state() == before


def billed() -> dict[str, Any]:
    return {**CHECKOUT, "billing": billing(name=f"Attacker {uuid.uuid4().hex}")}


# --- the cookie's name where it is Secure -----------------------------------------------------


@pytest.fixture(scope="module")
def secure_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStore]:
    """`store dev` configured as a TLS deployment is: a Secure cookie."""
    data: Path = tmp_path_factory.mktemp("sec-secure-cookie")
    with embedded(data, extra_env={**LIMITS, "GATEWAY_COOKIE_SECURE": "true"}) as running:
        yield running


def cookie_header(response: httpx.Response) -> tuple[str, str, set[str]]:
    """The name, value and attributes (lowercased) of the response's Set-Cookie."""
    raw = response.headers["set-cookie"]
    pair, *attributes = (part.strip() for part in raw.split(";"))
    name, _, value = pair.partition("=")
    return name, value, {a.lower() for a in attributes}


async def test_a_secure_deployment_names_the_cookie_host_only(secure_store: RunningStore) -> None:
    # Over plain HTTP a client keeps Secure cookies to itself: send them by hand, as a browser
    # on HTTPS would.
    async with httpx.AsyncClient(base_url=secure_store.base_url, timeout=15) as http:
        price = await one_off_price(http)
        added = await http.post("/api/store/cart/lines", json={"pricing_id": price["id"]})
        assert added.status_code == 200, added.text
        name, value, attributes = cookie_header(added)
        assert name == f"__Host-{COOKIE}"
        assert {"secure", "httponly", "path=/", "samesite=lax"} <= attributes
        assert not any(a.startswith("domain") for a in attributes)
        mine = await http.get("/api/store/cart", headers={"cookie": f"{name}={value}"})
        assert [line["pricing_id"] for line in mine.json()["lines"]] == [price["id"]]
        # A plain-named cookie (what a sibling subdomain can set for the parent domain) is
        # ignored: planting one's own cookie does not make the victim shop as the attacker.
        planted = await http.get("/api/store/cart", headers={"cookie": f"{COOKIE}={value}"})
        assert planted.json()["lines"] == []
