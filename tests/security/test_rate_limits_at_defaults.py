"""The default rate limits, on a distributed store behind a configured proxy: a realistic
shopping rush sees no 429, card testing does, and a server-side front end's shoppers are each
counted on their own address without anyone else being able to pick one."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest

from gateway.forwarded import FRONTEND_TOKEN_HEADER, SHOPPER_ADDRESS_HEADER
from gateway.settings import GatewaySettings
from tests.e2e.helpers import billing, products
from tests.security.conftest import CHECKOUT, URLS, random_address
from tests.support.cluster import RunningStore, distributed

FRONTEND_TOKEN = secrets.token_urlsafe(32)
LIMIT_FIELDS = [name for name in GatewaySettings.model_fields if name.startswith("rate_limit_")]


def default(name: str) -> int:
    """The default allowance per minute of a rate-limit setting."""
    notation = str(GatewaySettings.model_fields[name].default)
    amount, _, period = notation.partition("/")
    assert period == "minute", notation
    return int(amount)


@pytest.fixture(scope="module")
def defaults_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStore]:
    limits = {
        f"GATEWAY_{name.upper()}": str(GatewaySettings.model_fields[name].default)
        for name in LIMIT_FIELDS
    }
    with distributed(
        postgres_url=request.getfixturevalue("postgres_server_url"),
        redis_url=request.getfixturevalue("redis_url"),
        amqp_url=request.getfixturevalue("amqp_url"),
        log_dir=tmp_path_factory.mktemp("limits-defaults"),
        extra_env={
            **limits,
            "FORWARDED_ALLOW_IPS": "127.0.0.1",
            "GATEWAY_FRONTEND_TOKENS": FRONTEND_TOKEN,
        },
    ) as running:
        yield running


@pytest.fixture
async def client_for(
    defaults_store: RunningStore,
) -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []

    def make(**headers: str) -> httpx.AsyncClient:
        http = httpx.AsyncClient(base_url=defaults_store.base_url, timeout=30, headers=headers)
        clients.append(http)
        return http

    yield make
    for http in clients:
        await http.aclose()


async def prices(http: httpx.AsyncClient) -> list[str]:
    items = await products(http, limit=50)
    return [p["id"] for item in items for p in item["prices"] if p.get("interval") is None]


async def test_a_rush_of_forty_shoppers_with_forty_lines_sees_no_429(
    client_for: Callable[..., httpx.AsyncClient],
) -> None:
    pricing_ids = await prices(client_for())
    statuses: list[int] = []
    # Each shopper has an address and an identity of its own, so how many shop at the same
    # moment changes no counter: eight at a time keep the rush within the minute and within
    # what two cores serve, so a slow machine shows as slow, not as 503s (not what is tested).
    at_once = asyncio.Semaphore(8)

    async def shop(index: int) -> None:
        async with at_once:
            await one_shopper(index)

    async def one_shopper(index: int) -> None:
        http = client_for(**{"x-forwarded-for": random_address()})
        for line in range(40):
            added = await http.post(
                "/api/store/cart/lines", json={"pricing_id": pricing_ids[line % len(pricing_ids)]}
            )
            statuses.append(added.status_code)
        created = await http.post("/api/payments/billing", json=billing(name=f"Rush {index}"))
        statuses.append(created.status_code)
        checkout = await http.post("/api/store/checkout", json=CHECKOUT)
        statuses.append(checkout.status_code)
        assert checkout.status_code == 200, checkout.text

    await asyncio.wait_for(asyncio.gather(*(shop(i) for i in range(40))), timeout=60)
    assert len(statuses) == 40 * 42
    assert 429 not in statuses
    assert set(statuses) <= {200, 201}, [s for s in statuses if s not in (200, 201)][:5]


async def refusals(http: httpx.AsyncClient, rule: str, per: str) -> float:
    text = (await http.get("/metrics")).text
    pattern = rf'store_gateway_rate_limited_total\{{per="{per}",rule="{rule}"\}} ([0-9.e+]+)'
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


async def test_one_shopper_opening_a_hundred_payment_sessions_is_refused(
    client_for: Callable[..., httpx.AsyncClient],
) -> None:
    http = client_for(**{"x-forwarded-for": random_address()})
    pricing_id = (await prices(http))[0]
    assert (await http.post("/api/store/cart/lines", json={"pricing_id": pricing_id})).is_success
    assert (await http.post("/api/payments/billing", json=billing(name="Tester"))).is_success
    before = await refusals(http, "sessions", "identity")
    checkout = await http.post("/api/store/checkout", json=CHECKOUT)
    assert checkout.status_code == 200, checkout.text
    order_id = checkout.json()["order"]["id"]
    statuses = [checkout.status_code]
    for _ in range(99):
        paid = await http.post(f"/api/store/orders/{order_id}/pay", json=URLS)
        statuses.append(paid.status_code)
    allowed = default("rate_limit_sessions_per_identity")
    assert statuses == [200] * allowed + [429] * (100 - allowed)
    assert await refusals(http, "sessions", "identity") == before + 100 - allowed


async def test_one_address_opening_a_hundred_payment_sessions_is_refused(
    client_for: Callable[..., httpx.AsyncClient],
) -> None:
    """A card tester rotating identities from one address: each new shopper brings a cart and
    billing, and the address runs out of sessions (or billing) long before a hundred."""
    address = random_address()
    pricing_id = (await prices(client_for()))[0]
    opened = 0
    refused = 0
    for index in range(100):
        http = client_for(**{"x-forwarded-for": address})
        await http.post("/api/store/cart/lines", json={"pricing_id": pricing_id})
        await http.post("/api/payments/billing", json=billing(name=f"Tester {index}"))
        checkout = await http.post("/api/store/checkout", json=CHECKOUT)
        if checkout.status_code == 200:
            opened += 1
        else:
            assert checkout.status_code in (422, 429), checkout.text
            refused += 1
    assert opened <= default("rate_limit_sessions_per_address")
    assert refused >= 100 - default("rate_limit_sessions_per_address")


async def test_a_front_ends_shoppers_are_counted_on_their_own_addresses(
    client_for: Callable[..., httpx.AsyncClient],
) -> None:
    pricing_id = (await prices(client_for()))[0]
    shoppers = default("rate_limit_new_carts_per_address") + 10

    async def new_carts(headers: dict[str, str]) -> list[int]:
        statuses = []
        for _ in range(shoppers):
            http = client_for(**headers, **{SHOPPER_ADDRESS_HEADER: random_address()})
            added = await http.post("/api/store/cart/lines", json={"pricing_id": pricing_id})
            statuses.append(added.status_code)
        return statuses

    # One front end's server address, its shoppers' addresses passed with its credential.
    frontend = {"x-forwarded-for": random_address(), FRONTEND_TOKEN_HEADER: FRONTEND_TOKEN}
    assert await new_carts(frontend) == [200] * shoppers
    # Without the credential (or with a guessed one) the header picks nothing: one bucket.
    for guessed in ({}, {FRONTEND_TOKEN_HEADER: secrets.token_urlsafe(32)}):
        statuses = await new_carts({"x-forwarded-for": random_address(), **guessed})
        allowed = default("rate_limit_new_carts_per_address")
        assert statuses == [200] * allowed + [429] * (shoppers - allowed)


def test_the_old_limit_settings_are_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_RATE_LIMIT_PER_ADDRESS", "60/minute")
    with pytest.raises(ValueError, match="GATEWAY_RATE_LIMIT_SESSIONS_PER_ADDRESS"):
        GatewaySettings()
