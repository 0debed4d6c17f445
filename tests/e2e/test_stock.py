"""Stock through the gateway in the distributed mode (PostgreSQL, Redis, RabbitMQ, five
processes): operators set it, the cart refuses more than is left, 50 shoppers race for the
last 10 units, canceled orders and holds past their deadline give their units back, and a
payment that lands after its hold was released is paid and backordered.

The cluster holds reservations for 60 s (the shortest `CATALOG_STOCK_HOLD_S` allows) and
sweeps every second, while dev checkouts stay open for a day: so the holds of this test
expire under still-open sessions, which is what lets a late payment land.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import assert_problem, billing
from tests.e2e.test_checkout import checkout, press, wait_for_order
from tests.support.cluster import RunningStore, distributed

HOLD_S = 60
PRODUCT = "mug"


@pytest.fixture(scope="module")
def stock_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStore]:
    with distributed(
        postgres_url=request.getfixturevalue("postgres_server_url"),
        redis_url=request.getfixturevalue("redis_url"),
        amqp_url=request.getfixturevalue("amqp_url"),
        log_dir=tmp_path_factory.mktemp("stock"),
        extra_env={
            "CATALOG_STOCK_HOLD_S": str(HOLD_S),
            "CATALOG_STOCK_SWEEP_INTERVAL_S": "1",
            # 50 checkouts at once on a small shared test machine: what is measured here is
            # the stock, not how long a saturated pool makes a request wait before its 503.
            "STORE_DB_POOL_TIMEOUT_S": "10",
            "STORE_HTTP_TIMEOUT_S": "30",
        },
    ) as running:
        yield running


def admin_headers(store: RunningStore, *, role: bool = True) -> dict[str, str]:
    from gateway.identity import issue_token
    from gateway.settings import DEV_JWT_SECRET

    secret = store.env.get("GATEWAY_JWT_SECRET", DEV_JWT_SECRET)
    token = issue_token("ops@example", secret=secret, roles=["store:admin"] if role else [])
    return {"authorization": f"Bearer {token}"}


async def price_of(client: httpx.AsyncClient, key: str) -> dict[str, Any]:
    product = (await client.get(f"/api/store/products/{key}")).json()
    return next(p for p in product["prices"] if p["interval"] is None)


async def stock(client: httpx.AsyncClient, store: RunningStore) -> dict[str, Any]:
    response = await client.get(
        f"/api/admin/products/{PRODUCT}/stock", headers=admin_headers(store)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["available"] is None or body["available"] >= 0
    return body


async def shop(client: httpx.AsyncClient, pricing_id: str, quantity: int = 1) -> httpx.Response:
    """One shopper: add to the cart, then check out."""
    added = await client.post(
        "/api/store/cart/lines", json={"pricing_id": pricing_id, "quantity": quantity}
    )
    assert added.status_code == 200, added.text
    return await checkout(client, billing=billing("DE"))


@pytest.mark.integration
async def test_stock_is_set_reserved_never_oversold_released_and_backordered(
    stock_store: RunningStore,
) -> None:
    store = stock_store
    async with httpx.AsyncClient(base_url=store.base_url, timeout=60) as client:
        # Operators only: 401 without a token, 403 without the role.
        body = {"on_hand": 10}
        url = f"/api/admin/products/{PRODUCT}/stock"
        assert_problem(await client.put(url, json=body), 401)
        assert_problem(
            await client.put(url, json=body, headers=admin_headers(store, role=False)), 403
        )
        set_ = await client.put(url, json=body, headers=admin_headers(store))
        assert set_.status_code == 200, set_.text
        assert set_.json() == {
            "product_key": PRODUCT,
            "tracked": True,
            "on_hand": 10,
            "reserved": 0,
            "available": 10,
        }
        price = await price_of(client, PRODUCT)

        # The cart refuses more than is available, naming the product.
        too_many = await client.post(
            "/api/store/cart/lines", json={"pricing_id": price["id"], "quantity": 11}
        )
        refused = assert_problem(too_many, 409, "out_of_stock")
        assert refused["products"] == [{"product_key": PRODUCT, "requested": 11, "available": 10}]

        # 50 shoppers race for the last 10 units.
        shoppers = [httpx.AsyncClient(base_url=store.base_url, timeout=60) for _ in range(50)]
        try:
            answers = await asyncio.gather(*(shop(s, price["id"]) for s in shoppers))
            await _the_rest(client, store, price, shoppers, answers)
        finally:
            for shopper in shoppers:
                await shopper.aclose()


async def _the_rest(
    client: httpx.AsyncClient,
    store: RunningStore,
    price: dict[str, Any],
    shoppers: list[httpx.AsyncClient],
    answers: list[httpx.Response],
) -> None:
    won = [a for a in answers if a.status_code == 200]
    lost = [a for a in answers if a.status_code != 200]
    assert len(won) == 10, [a.text for a in lost[:3]]
    assert len(lost) == 40
    for answer in lost:
        problem = assert_problem(answer, 409, "out_of_stock")
        assert [p["product_key"] for p in problem["products"]] == [PRODUCT]
    level = await stock(client, store)
    assert (level["on_hand"], level["reserved"], level["available"]) == (10, 10, 0)
    started = time.monotonic()

    # Three of them cancel: orders.order.canceled.v1 gives their units back.
    for answer in won[:3]:
        shopper = shoppers[answers.index(answer)]
        canceled = await shopper.post(f"/api/store/orders/{answer.json()['order']['id']}/cancel")
        assert canceled.status_code == 200, canceled.text
    for _ in range(100):
        level = await stock(client, store)
        if level["available"] == 3:
            break
        await asyncio.sleep(0.2)
    assert (level["on_hand"], level["reserved"], level["available"]) == (10, 7, 3)

    # A shopper sees what is left (within the product cache's few seconds).
    for _ in range(100):
        shown = (await client.get(f"/api/store/products/{PRODUCT}")).json()["stock"]
        if shown == {"tracked": True, "available": 3}:
            break
        await asyncio.sleep(0.2)
    assert shown == {"tracked": True, "available": 3}

    # Nobody paid: past the deadline the sweep gives every unit back.
    await asyncio.sleep(max(0.0, HOLD_S - (time.monotonic() - started)))
    for _ in range(150):
        level = await stock(client, store)
        if level["available"] == 10:
            break
        await asyncio.sleep(0.2)
    assert (level["on_hand"], level["reserved"], level["available"]) == (10, 0, 10)

    # Someone else buys all ten and pays...
    async with httpx.AsyncClient(base_url=store.base_url, timeout=60) as buyer:
        await buyer.post("/api/store/cart/lines", json={"pricing_id": price["id"], "quantity": 10})
        bought = await checkout(buyer, billing=billing("DE"))
        assert bought.status_code == 200, bought.text
        await press(buyer, bought.json()["payment"]["checkout_url"], "pay")
        paid = await wait_for_order(buyer, bought.json()["order"]["id"], paid=True)
        assert paid["backordered"] is False
    level = await stock(client, store)
    assert (level["on_hand"], level["reserved"], level["available"]) == (0, 0, 0)

    # ...then one of the racers, whose hold was released, pays in its still-open session:
    # paid, never refused, and flagged backordered rather than silently oversold.
    late = won[-1].json()  # not one of the canceled: a canceled order is never paid
    payer = shoppers[answers.index(won[-1])]
    await press(payer, late["payment"]["checkout_url"], "pay")
    for _ in range(100):
        order = (await payer.get(f"/api/store/orders/{late['order']['id']}")).json()
        if order.get("paid") and order.get("backordered"):
            break
        await asyncio.sleep(0.2)
    assert order["paid"] is not None and order["backordered"] is True
    level = await stock(client, store)
    assert level["available"] == 0 and level["reserved"] == 0
