"""For the example consumers' tests on real RabbitMQ: the store in the distributed mode (five
processes over PostgreSQL, Redis and RabbitMQ, on a uniquely named exchange), and a shopper who
buys through its gateway so that real events reach the consumers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import pytest

from libs.contracts.envelope import Envelope
from tests.conftest import amqp_url, postgres_server_url, redis_url  # noqa: F401  (fixtures)
from tests.e2e.helpers import billing, products
from tests.support.cluster import RunningStore, distributed

T = TypeVar("T")
URLS = {"success_url": "https://shop.example/thanks", "cancel_url": "https://shop.example/cart"}


@pytest.fixture(scope="session")
def store(
    postgres_server_url: str,  # noqa: F811
    redis_url: str,  # noqa: F811
    amqp_url: str,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningStore]:
    with distributed(
        postgres_url=postgres_server_url,
        redis_url=redis_url,
        amqp_url=amqp_url,
        log_dir=tmp_path_factory.mktemp("consumers-store"),
    ) as running:
        yield running


def unique_queue(app: str) -> str:
    return f"{app}.test-{uuid.uuid4().hex[:10]}"


async def delete_queues(amqp: str, name: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(amqp)
    try:
        channel = await connection.channel()
        for queue in (name, f"{name}.dlq"):
            await channel.queue_delete(queue)
    finally:
        await connection.close()


async def buy(store: RunningStore, *, shippable: bool, button: str) -> str:
    """A shopper buys one product and presses Pay or Decline; returns the order id."""
    async with httpx.AsyncClient(base_url=store.base_url, timeout=15) as http:
        price = next(
            p
            for product in await products(http)
            if product["shippable"] is shippable
            for p in product["prices"]
            if p["interval"] is None
        )
        added = await http.post(
            "/api/store/cart/lines", json={"pricing_id": price["id"], "quantity": 2}
        )
        assert added.status_code == 200, added.text
        checkout = await http.post(
            "/api/store/checkout",
            json={"billing": billing(), "shipping": {"method": "standard"}, **URLS},
        )
        assert checkout.status_code == 200, checkout.text
        body: dict[str, Any] = checkout.json()
        path = urlsplit(body["payment"]["checkout_url"]).path
        pressed = await http.post(f"{path}/{button}")
        assert pressed.status_code == 303, pressed.text
        return str(body["order"]["id"])


async def eventually(read: Callable[[], T], done: Callable[[T], bool], what: str) -> T:
    """Poll `read` until `done` holds (at most 30 s)."""
    value = read()
    for _ in range(300):
        if done(value):
            return value
        await asyncio.sleep(0.1)
        value = read()
    raise AssertionError(f"{what} never happened: {value!r}")


async def deliver_twice_then_marker(broker: Any, exchange: str, envelope: Envelope) -> None:
    """Publish `envelope` twice, then a "marker": the same event for order `marker` under a new
    event id. One worker consumes the queue in order, so once the marker is handled, both
    copies were."""
    marker = envelope.model_copy(
        update={"event_id": uuid.uuid4(), "payload": {**envelope.payload, "order_id": "marker"}}
    )
    for message in (envelope, envelope, marker):
        await broker.publish(
            message.model_dump(mode="json"),
            exchange=exchange,
            routing_key=message.type,
            persist=True,
        )
