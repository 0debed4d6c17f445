"""The gateway dies while a shopper's pay request is inside it; the shopper retries with the
same Idempotency-Key and learns the real result — never a second payment."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis.asyncio as redis

from tests.e2e.conftest import token_for
from tests.e2e.helpers import billing, one_off_price
from tests.support.cluster import RunningStore, distributed

pytestmark = pytest.mark.integration

URLS = {"success_url": "https://shop.example/thanks", "cancel_url": "https://shop.example/cart"}


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server_url: str,
    redis_url: str,
    amqp_url: str,
) -> Iterator[RunningStore]:
    # A short in-flight lock: a key whose gateway died frees itself quickly in this test.
    with distributed(
        postgres_url=postgres_server_url,
        redis_url=redis_url,
        amqp_url=amqp_url,
        log_dir=tmp_path_factory.mktemp("killed-gateway"),
        extra_env={"GATEWAY_IDEMPOTENCY_LOCK_S": "2"},
    ) as running:
        yield running


def service_headers(store: RunningStore) -> dict[str, str]:
    """How a test calls a service's internal routes directly (the service credential)."""
    return {"x-service-token": store.env["STORE_SERVICE_TOKEN"]}


async def order_attempts(store: RunningStore, order_id: str) -> list[dict[str, Any]]:
    base = f"http://127.0.0.1:{store.ports['payments']}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        response = await http.get(f"/orders/{order_id}/payments", headers=service_headers(store))
    assert response.status_code == 200, response.text
    return list(response.json())


async def wait_for_key(redis_url: str, user_id: str) -> None:
    """Until the gateway has claimed the user's key: the pay request is inside the gateway."""
    client = redis.from_url(redis_url)
    try:
        for _ in range(200):  # bounded
            found = [k async for k in client.scan_iter(f"store:idempotency:user:{user_id}:*")]
            if found:
                return
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()
    raise AssertionError("the gateway never claimed the key")


async def test_a_retry_after_the_gateway_died_mid_pay_returns_the_real_result(
    cluster: RunningStore, redis_url: str
) -> None:
    user_id = f"u-{uuid.uuid4().hex[:10]}"
    auth = {"Authorization": f"Bearer {token_for(cluster, user_id)}"}
    async with httpx.AsyncClient(base_url=cluster.base_url, timeout=15, headers=auth) as shop:
        price = await one_off_price(shop)
        added = await shop.post(
            "/api/store/cart/lines", json={"pricing_id": price["id"], "quantity": 1}
        )
        assert added.status_code == 200, added.text
        checkout = await shop.post(
            "/api/store/checkout",
            json={**URLS, "billing": billing(), "shipping": {"method": "standard"}},
        )
        assert checkout.status_code == 200, checkout.text
        order_id = checkout.json()["order"]["id"]
        first_attempt = checkout.json()["payment"]["attempt_id"]

        pay_key = {"Idempotency-Key": str(uuid.uuid4())}
        payments = cluster.processes["payments"]
        os.kill(payments.pid, signal.SIGSTOP)  # payments holds the request the gateway sends
        try:
            pending = asyncio.create_task(
                shop.post(f"/api/store/orders/{order_id}/pay", json=URLS, headers=pay_key)
            )
            await wait_for_key(redis_url, user_id)
            cluster.processes["gateway"].kill()  # mid-pay
            cluster.processes["gateway"].wait(10)
            with pytest.raises(httpx.TransportError):
                await pending  # the shopper is told nothing useful
        finally:
            os.kill(payments.pid, signal.SIGCONT)
        cluster.start("gateway")

        retried = None
        for _ in range(60):  # bounded: the dead gateway's in-flight lock expires
            retried = await shop.post(
                f"/api/store/orders/{order_id}/pay", json=URLS, headers=pay_key
            )
            if retried.status_code != 409:
                break
            assert retried.json()["code"] == "idempotency_key_in_use"
            await asyncio.sleep(0.5)
        assert retried is not None and retried.status_code == 200, retried.text
        payment = retried.json()["payment"]
        assert payment["status"] == "unpaid" and payment["checkout_url"]
        # Exactly one open attempt: the one the retry returned; the others are closed.
        attempts = await order_attempts(cluster, order_id)
        assert [a["attempt_id"] for a in attempts if a["status"] == "unpaid"] == [
            payment["attempt_id"]
        ]
        replay = await shop.post(f"/api/store/orders/{order_id}/pay", json=URLS, headers=pay_key)
        assert replay.json() == retried.json()

        async def press(checkout_url: str) -> httpx.Response:
            return await shop.post(f"{urlsplit(checkout_url).path}/pay")

        assert (await press(payment["checkout_url"])).status_code == 303
        old = await shop.post(f"/api/payments/dev-checkout/{first_attempt}/pay")
        assert old.status_code == 409 and old.json()["code"] == "checkout_closed"
        attempts = await order_attempts(cluster, order_id)
        assert [a["status"] for a in attempts].count("paid") == 1
        assert not any(a["refund_required"] for a in attempts)
        again = await shop.post(
            f"/api/store/orders/{order_id}/pay", json=URLS, headers={"Idempotency-Key": "x1"}
        )
        assert again.status_code == 409 and again.json()["code"] == "order_already_paid"
