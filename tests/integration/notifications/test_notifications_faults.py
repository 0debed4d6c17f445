"""200 paid orders through `store serve notifications` killed -9 twice and an SMTP server down
for 10 s: every order gets its confirmation, one per Message-ID; the copies a kill may cause
(sent, not yet committed) are few and carry the same Message-ID."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, HTTPException

from libs.contracts.envelope import Envelope
from libs.contracts.orders import OrderOut
from libs.runtime.delivery import RetryPolicy
from libs.runtime.rabbit import RabbitBus
from tests.conftest import BusNames
from tests.support.cluster import REPO, free_port, store_command
from tests.support.services import TEST_SERVICE_TOKEN
from tests.support.smtp import MailCatcher
from tests.unit.notifications.builders import order_out, paid

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ORDERS = 200
CONCURRENCY = 4


class FakeOrdersServer:
    """The orders service's order view over HTTP, a little slow, for the orders it holds."""

    def __init__(self, orders: dict[str, OrderOut]) -> None:
        self.port = free_port()
        app = FastAPI()

        @app.get("/orders/{order_id}")
        async def get_order(order_id: str) -> OrderOut:
            await asyncio.sleep(0.03)  # the kills find work in flight
            if order_id not in orders:
                raise HTTPException(404)
            return orders[order_id]

        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> FakeOrdersServer:
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return self
            time.sleep(0.05)
        raise RuntimeError("the fake orders server did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class Consumer:
    """`store serve notifications` as its own process, killed and restarted at will."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            store_command("serve", "notifications", "--port", str(self.port)),
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                ready = httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2)
                if ready.status_code == 200 and ready.json()["status"] == "ready":
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"notifications not ready:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)  # no shutdown, no drain
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
def consumer_env(pg_database_url: str, bus_names: BusNames, tmp_path: Path) -> Iterator[dict]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STORE_", "NOTIFICATIONS_", "GATEWAY_"))
    }
    env.update(
        PYTHONUNBUFFERED="1",
        STORE_BROKER_URL=bus_names.url,
        STORE_EXCHANGE=bus_names.exchange,
        STORE_QUEUE_PREFIX=bus_names.queue_prefix,
        STORE_SERVICE_TOKEN=TEST_SERVICE_TOKEN,
        STORE_DATA_DIR=str(tmp_path),
        STORE_LOG_FORMAT="json",
        STORE_LOG_LEVEL="WARNING",
        STORE_CONSUMER_RETRY_LADDER_MS="[1000]",
        STORE_CONSUMER_RETRY_BUDGET_S="300",
        STORE_CONSUMER_CONCURRENCY=str(CONCURRENCY),
        NOTIFICATIONS_DATABASE_URL=pg_database_url,
        NOTIFICATIONS_DATABASE_POOL_SIZE=str(CONCURRENCY),
        NOTIFICATIONS_SMTP_SECURITY="none",
    )
    migrated = subprocess.run(
        store_command("migrate", "notifications"), env=env, cwd=REPO, capture_output=True
    )
    assert migrated.returncode == 0, migrated.stderr.decode()
    yield env


async def wait_for(check, what: str, within_s: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{what}: not within {within_s}s")


async def test_every_paid_order_gets_one_confirmation_through_kills_and_an_smtp_outage(
    consumer_env: dict[str, str], bus_names: BusNames, tmp_path: Path
) -> None:
    orders = {order.id: order for order in (order_out() for _ in range(ORDERS))}
    smtp = MailCatcher()
    env = {**consumer_env, "NOTIFICATIONS_SMTP_URL": smtp.smtp_url}
    publisher = RabbitBus(
        bus_names.url,
        exchange=bus_names.exchange,
        queue_prefix=bus_names.queue_prefix,
        retry=RetryPolicy(ladder_ms=(1_000,), budget_ms=300_000),
    )
    with smtp, FakeOrdersServer(orders) as fake:
        env["STORE_ORDERS_URL"] = f"http://127.0.0.1:{fake.port}"
        consumer = Consumer(env, tmp_path / "notifications.log")
        consumer.start()
        await publisher.start()
        try:
            for order in orders.values():
                await publisher.publish(Envelope.wrap(paid(order), producer="orders"))

            def received() -> int:
                return len(smtp.messages())

            await wait_for(lambda: received() >= 30, "30 confirmations")
            consumer.kill()  # first kill -9, mid-stream
            consumer.start()
            await wait_for(lambda: received() >= 90, "90 confirmations")
            smtp.stop()  # the SMTP server goes away for 10 s ...
            assert received() < ORDERS, "the outage must find confirmations still to send"
            await asyncio.sleep(2)
            consumer.kill()  # ... and the consumer is killed -9 while it is down
            consumer.start()
            await asyncio.sleep(8)
            smtp.start()
            await wait_for(
                lambda: len({m["X-Store-Event-Id"] for m in smtp.messages()}) >= ORDERS,
                "every confirmation",
                within_s=180,
            )
            await asyncio.sleep(3)  # room for a wrong extra one
        finally:
            consumer.stop()
            await publisher.stop()
        messages = smtp.messages()

    per_order = collections.Counter(str(m["Subject"]).split()[2] for m in messages)
    numbers = {order.number for order in orders.values()}
    assert set(per_order) == numbers
    by_message_id = collections.defaultdict(set)
    for message in messages:
        by_message_id[str(message["Subject"]).split()[2]].add(str(message["Message-ID"]).strip())
    assert all(len(ids) == 1 for ids in by_message_id.values()), "one Message-ID per order"
    # A copy is possible only for a message sent and not yet committed when a kill came: at
    # most the deliveries in flight at each of the two kills.
    copies = len(messages) - ORDERS
    print(f"{len(messages)} messages for {ORDERS} orders: {copies} resent copies")
    assert 0 <= copies <= 2 * CONCURRENCY, per_order.most_common(5)
