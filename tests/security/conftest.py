"""The attack matrix's stores: `store dev` (embedded) and the five processes (distributed),
started with low rate limits; each shopper comes from its own address (the loopback proxy is
trusted, so `X-Forwarded-For` sets the client address the gateway sees)."""

from __future__ import annotations

import ipaddress
import random
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import billing, one_off_price
from tests.support.cluster import RunningStore, distributed, embedded

# Low limits, so a test reaches each one quickly; the loopback proxy (the test client) is
# trusted, so each shopper's X-Forwarded-For is its address.
SESSIONS_PER_IDENTITY = 6
SESSIONS_PER_ADDRESS = 12
BILLING_PER_IDENTITY = 4
BILLING_PER_ADDRESS = 20
NEW_CARTS_PER_ADDRESS = 20
CART_WRITES_PER_IDENTITY = 40
LIMITS = {
    "GATEWAY_RATE_LIMIT_SESSIONS_PER_IDENTITY": f"{SESSIONS_PER_IDENTITY}/minute",
    "GATEWAY_RATE_LIMIT_SESSIONS_PER_ADDRESS": f"{SESSIONS_PER_ADDRESS}/minute",
    "GATEWAY_RATE_LIMIT_BILLING_PER_IDENTITY": f"{BILLING_PER_IDENTITY}/minute",
    "GATEWAY_RATE_LIMIT_BILLING_PER_ADDRESS": f"{BILLING_PER_ADDRESS}/minute",
    "GATEWAY_RATE_LIMIT_NEW_CARTS_PER_ADDRESS": f"{NEW_CARTS_PER_ADDRESS}/minute",
    "GATEWAY_RATE_LIMIT_CART_WRITES_PER_IDENTITY": f"{CART_WRITES_PER_IDENTITY}/minute",
    "FORWARDED_ALLOW_IPS": "127.0.0.1",
}
# A second name the gateway answers to (as a server-side front end might call it): links must
# still be on the public origin.
ALIAS_HOST = "gateway.internal"
HOSTS = {"GATEWAY_ALLOWED_HOSTS": ALIAS_HOST}
URLS = {"success_url": "https://shop.example/thanks", "cancel_url": "https://shop.example/cart"}
# The example products ship: a checkout names a method (the address is the billing one).
SHIPPING = {"shipping": {"method": "standard"}}
CHECKOUT = {**URLS, **SHIPPING}


@pytest.fixture(scope="session", params=["embedded", "distributed"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStore]:
    if request.param == "embedded":
        with embedded(
            tmp_path_factory.mktemp("sec-embedded"), extra_env={**LIMITS, **HOSTS}
        ) as running:
            yield running
        return
    with distributed(
        postgres_url=request.getfixturevalue("postgres_server_url"),
        redis_url=request.getfixturevalue("redis_url"),
        amqp_url=request.getfixturevalue("amqp_url"),
        log_dir=tmp_path_factory.mktemp("sec-distributed"),
        extra_env={**LIMITS, **HOSTS},
    ) as running:
        yield running


def random_address() -> str:
    return str(ipaddress.IPv4Address(random.randint(0x0B000000, 0xDEFFFFFF)))


@pytest.fixture
async def shopper(store: RunningStore) -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    """Make shoppers, each with its own cookie jar and client address."""
    clients: list[httpx.AsyncClient] = []

    def make(**headers: str) -> httpx.AsyncClient:
        http = httpx.AsyncClient(
            base_url=store.base_url,
            timeout=15,
            headers={"x-forwarded-for": random_address(), **headers},
        )
        clients.append(http)
        return http

    yield make
    for http in clients:
        await http.aclose()


@dataclass
class Victim:
    """A shopper with one cart line and billing information: what attacks try to change."""

    http: httpx.AsyncClient
    price: dict[str, Any]
    customer: dict[str, Any]

    async def cart(self) -> dict[str, Any]:
        response = await self.http.get("/api/store/cart")
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def state(self) -> tuple[Any, ...]:
        """What a shopper would see change: cart lines, customers, orders."""
        cart = await self.cart()
        lines = sorted((line["pricing_id"], line["quantity"]) for line in cart["lines"])
        customers = (await self.http.get("/api/store/customers")).json()
        orders = (await self.http.get("/api/store/orders")).json()
        return (lines, customers, orders)


@asynccontextmanager
async def new_victim(
    make: Callable[..., httpx.AsyncClient], **headers: str
) -> AsyncIterator[Victim]:
    http = make(**headers)
    price = await one_off_price(http)
    added = await http.post("/api/store/cart/lines", json={"pricing_id": price["id"]})
    assert added.status_code == 200, added.text
    created = await http.post("/api/payments/billing", json=billing(name=f"V {uuid.uuid4().hex}"))
    assert created.status_code == 201, created.text
    yield Victim(http=http, price=price, customer=created.json())


@pytest.fixture
async def victim(shopper: Callable[..., httpx.AsyncClient]) -> AsyncIterator[Victim]:
    async with new_victim(shopper) as anonymous:
        yield anonymous
