"""Rate limits guard what costs money or enables abuse and spare shoppers (issue: a test per
limited route). The attack matrix's stores run with low limits (tests/security/conftest.py) and
trust the loopback proxy, so each client's X-Forwarded-For is its address."""

from __future__ import annotations

import ipaddress
import time
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from tests.e2e.helpers import assert_problem, billing
from tests.security.conftest import (
    BILLING_PER_IDENTITY,
    CART_WRITES_PER_IDENTITY,
    CHECKOUT,
    NEW_CARTS_PER_ADDRESS,
    SESSIONS_PER_ADDRESS,
    SESSIONS_PER_IDENTITY,
    URLS,
    new_victim,
    random_address,
)
from tests.security.test_gateway_attacks import as_user, first_pricing_id
from tests.support.cluster import RunningStore


def assert_limited(response: httpx.Response) -> None:
    assert_problem(response, 429, "rate_limited")
    assert int(response.headers["retry-after"]) >= 1


async def test_cart_writes_are_limited_per_shopper_far_above_human_use(
    store: RunningStore, shopper: Callable[..., httpx.AsyncClient]
) -> None:
    user = f"writes-{time.time_ns()}"
    http = as_user(store, shopper, user)
    pricing_id = await first_pricing_id(http)
    statuses = []
    for _ in range(CART_WRITES_PER_IDENTITY):
        response = await http.post("/api/store/cart/lines", json={"pricing_id": pricing_id})
        statuses.append(response.status_code)
    assert statuses == [200] * CART_WRITES_PER_IDENTITY
    line_id = (await http.get("/api/store/cart")).json()["lines"][0]["line_id"]
    assert_limited(await http.post("/api/store/cart/lines", json={"pricing_id": pricing_id}))
    assert_limited(await http.patch(f"/api/store/cart/lines/{line_id}", json={"quantity": 1}))
    assert_limited(await http.delete(f"/api/store/cart/lines/{line_id}"))
    # The same user from another address is still limited: the count follows the identity.
    elsewhere = as_user(store, shopper, user)
    assert_limited(await elsewhere.post("/api/store/cart/lines", json={"pricing_id": pricing_id}))
    lines = (await http.get("/api/store/cart")).json()["lines"]
    assert [line["quantity"] for line in lines] == [CART_WRITES_PER_IDENTITY]


async def test_new_carts_are_limited_per_address(
    shopper: Callable[..., httpx.AsyncClient],
) -> None:
    address = random_address()
    pricing_id = await first_pricing_id(shopper())
    statuses = []
    for _ in range(NEW_CARTS_PER_ADDRESS + 2):
        fresh = shopper(**{"x-forwarded-for": address})  # no cookie: a new cart each time
        response = await fresh.post("/api/store/cart/lines", json={"pricing_id": pricing_id})
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert_limited(response)
            assert "set-cookie" not in response.headers  # no cart, no shopper was created
    assert statuses == [200] * NEW_CARTS_PER_ADDRESS + [429] * 2


async def test_an_ipv6_client_is_counted_per_64(
    shopper: Callable[..., httpx.AsyncClient],
) -> None:
    network = ipaddress.IPv6Network((0x2001_0DB8 << 96 | (uuid.uuid4().int % 2**32) << 64, 64))
    neighbour = ipaddress.IPv6Network((int(network.network_address) + 2**64, 64))
    pricing_id = await first_pricing_id(shopper())
    for host in range(1, NEW_CARTS_PER_ADDRESS + 1):
        fresh = shopper(**{"x-forwarded-for": str(network[host])})
        added = await fresh.post("/api/store/cart/lines", json={"pricing_id": pricing_id})
        assert added.status_code == 200, added.text
    # Another address of the same /64, written the RFC 7239 way: the same subscriber.
    same = shopper(forwarded=f'for="[{network[2**40 + 7]}]:4711"')
    assert_limited(await same.post("/api/store/cart/lines", json={"pricing_id": pricing_id}))
    other = shopper(**{"x-forwarded-for": str(neighbour[1])})
    assert (await other.post("/api/store/cart/lines", json={"pricing_id": pricing_id})).is_success


async def test_payment_sessions_are_limited_per_identity(
    shopper: Callable[..., httpx.AsyncClient],
) -> None:
    async with new_victim(shopper) as victim:
        checkout = await victim.http.post("/api/store/checkout", json=CHECKOUT)
        assert checkout.status_code == 200, checkout.text
        order_id = checkout.json()["order"]["id"]
        for _ in range(SESSIONS_PER_IDENTITY - 1):
            again = await victim.http.post(f"/api/store/orders/{order_id}/pay", json=URLS)
            assert again.status_code == 200, again.text
        before = (await victim.http.get(f"/api/store/orders/{order_id}")).json()
        assert_limited(await victim.http.post(f"/api/store/orders/{order_id}/pay", json=URLS))
        assert_limited(await victim.http.post("/api/store/checkout", json=CHECKOUT))
        # Also from another address: the count follows the shopper's cookie.
        cookie = {"cookie": "; ".join(f"{k}={v}" for k, v in victim.http.cookies.items())}
        moved = shopper(**cookie)
        assert_limited(await moved.post(f"/api/store/orders/{order_id}/pay", json=URLS))
        assert (await victim.http.get(f"/api/store/orders/{order_id}")).json() == before


async def test_payment_sessions_are_limited_per_address_whatever_the_identity(
    shopper: Callable[..., httpx.AsyncClient],
) -> None:
    address = random_address()
    statuses = []
    for _ in range(SESSIONS_PER_ADDRESS + 1):
        async with new_victim(shopper, **{"x-forwarded-for": address}) as victim:
            response = await victim.http.post("/api/store/checkout", json=CHECKOUT)
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert_limited(response)
                assert (await victim.http.get("/api/store/orders")).json()["items"] == []
    assert statuses == [200] * SESSIONS_PER_ADDRESS + [429]


async def test_the_dev_providers_pay_is_a_payment_session(
    shopper: Callable[..., httpx.AsyncClient],
) -> None:
    async with new_victim(shopper) as victim:
        checkout = await victim.http.post("/api/store/checkout", json=CHECKOUT)
        assert checkout.status_code == 200, checkout.text
        path = urlsplit(checkout.json()["payment"]["checkout_url"]).path
        # One session was opened by checkout; the rest of the allowance goes on presses.
        for _ in range(SESSIONS_PER_IDENTITY - 1):
            pressed = await victim.http.post(f"{path}/pay")
            assert pressed.status_code != 429, pressed.text
        assert_limited(await victim.http.post(f"{path}/pay"))


async def test_billing_creation_is_limited_per_identity(
    shopper: Callable[..., httpx.AsyncClient],
) -> None:
    http = shopper()
    pricing_id = await first_pricing_id(http)
    assert (await http.post("/api/store/cart/lines", json={"pricing_id": pricing_id})).is_success
    for index in range(BILLING_PER_IDENTITY):
        created = await http.post("/api/payments/billing", json=billing(name=f"B {index}"))
        assert created.status_code == 201, created.text
    customers = (await http.get("/api/store/customers")).json()
    assert_limited(await http.post("/api/payments/billing", json=billing(name="One too many")))
    assert (await http.get("/api/store/customers")).json() == customers
