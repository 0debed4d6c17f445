"""Checkout and the dev provider's payment, driven from Python (each shopper is a short
conversation, not one repeated request): checkouts per second, then payment confirmations at
a target rate and how long each takes to show as `orders.order.paid.v1` on the bus."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import urlsplit

import httpx

from bench.shop import PrepareError, Price, client, cookie_header, explain
from bench.wrk import Measure

URLS = {"success_url": "https://shop.example/thanks", "cancel_url": "https://shop.example/cart"}
# The example products ship: standard shipping, to the billing address.
CHECKOUT = {**URLS, "shipping": {"method": "standard"}}
BILLING = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "address": {
        "line1": "Hauptstraße 1",
        "city": "Berlin",
        "postal_code": "10115",
        "country": "DE",
    },
    "vat_id": None,
}
PAID_EVENT = "orders.order.paid.v1"


@dataclass(frozen=True)
class Unpaid:
    order_id: str
    pay_path: str
    cookie: str


@dataclass
class Latencies:
    values_ms: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        if not self.values_ms:
            return float("nan")
        ordered = sorted(self.values_ms)
        if len(ordered) == 1:
            return ordered[0]
        return statistics.quantiles(ordered, n=1000, method="inclusive")[round(q * 10) - 1]


async def place_order(
    http: httpx.AsyncClient, price: Price, cookie: str = ""
) -> tuple[Unpaid, float]:
    """One shopper's checkout: add a line, post billing, check out; the unpaid order and how
    long the checkout call took (ms)."""
    added = await http.post(
        "/api/store/cart/lines",
        json={"pricing_id": price.id, "quantity": 1},
        headers={"cookie": cookie} if cookie else {},
    )
    if added.status_code != 200:
        raise PrepareError(explain(added))
    cookie = cookie_header(added, cookie)
    billing = await http.post("/api/payments/billing", json=BILLING, headers={"cookie": cookie})
    if billing.status_code not in (200, 201):
        raise PrepareError(explain(billing))
    cookie = cookie_header(billing, cookie)
    sent = time.monotonic()
    response = await http.post("/api/store/checkout", json=CHECKOUT, headers={"cookie": cookie})
    if response.status_code != 200:
        raise PrepareError(explain(response))
    took_ms = (time.monotonic() - sent) * 1000
    cookie = cookie_header(response, cookie)
    body = response.json()
    url = body["payment"]["checkout_url"]
    return Unpaid(body["order"]["id"], urlsplit(url).path + "/pay", cookie), took_ms


def track_stock(running: Any, product_key: str, *, on_hand: int) -> str:
    """Make a product track stock (through the admin API); its key."""
    from gateway.identity import issue_token
    from gateway.settings import DEV_JWT_SECRET

    secret = running.env.get("GATEWAY_JWT_SECRET", DEV_JWT_SECRET)
    token = issue_token("bench", secret=secret, roles=["store:admin"])
    with httpx.Client(base_url=running.base_url, timeout=15) as http:
        http.put(
            f"/api/admin/products/{product_key}/stock",
            json={"on_hand": on_hand},
            headers={"authorization": f"Bearer {token}"},
        ).raise_for_status()
    return product_key


async def on_schedule(
    count: int,
    rate: float,
    job: Callable[[int, float], Coroutine[Any, Any, None]],
    *,
    lead_s: float = 0,
) -> float:
    """Start `job(i, due)` at its due time, `rate` a second from `lead_s` on, whatever the
    earlier ones are doing (open loop); wait for all of them. Returns the seconds from the
    first due time to the last job's end."""
    start = time.monotonic() + lead_s
    tasks = []
    for i in range(count):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(job(i, due)))
    await asyncio.gather(*tasks)
    return time.monotonic() - start


async def checkouts(
    base_url: str,
    price: Price,
    *,
    duration_s: float,
    min_orders: int,
    max_s: float,
    concurrency: int = 32,
) -> tuple[Measure, list[Unpaid]]:
    """Shoppers add a line, post billing and check out, `concurrency` at a time, for at least
    `duration_s` (longer, up to `max_s`, until `min_orders` orders exist)."""
    orders: list[Unpaid] = []
    latency = Latencies()
    errors: list[str] = []
    start = time.monotonic()

    def more() -> bool:
        elapsed = time.monotonic() - start
        return elapsed < duration_s or (len(orders) < min_orders and elapsed < max_s)

    async with client(base_url, concurrency) as http:

        async def shopper() -> None:
            order, checkout_ms = await place_order(http, price)
            latency.values_ms.append(checkout_ms)
            orders.append(order)

        async def worker() -> None:
            while more() and len(errors) < 50:
                try:
                    await shopper()
                except (PrepareError, httpx.HTTPError, KeyError, ValueError) as exc:
                    errors.append(str(exc) or repr(exc))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - start
    if not orders and errors:
        raise PrepareError(f"no checkout succeeded: {errors[0]}")
    return (
        Measure(
            requests=len(orders),
            seconds=elapsed,
            p50_ms=latency.percentile(50),
            p99_ms=latency.percentile(99),
            errors=len(errors),
            error_detail=errors[0] if errors else "",
        ),
        orders,
    )


class EventProbe:
    """A private, auto-deleted queue bound to one event type on the run's exchange: the moment
    each event is published, as a consumer would see it, keyed by `key_of(body)`."""

    def __init__(
        self,
        amqp_url: str,
        exchange: str,
        routing_key: str,
        key_of: Callable[[dict[str, Any]], str | None],
    ) -> None:
        self.amqp_url = amqp_url
        self.exchange = exchange
        self.routing_key = routing_key
        self.key_of = key_of
        self.seen: dict[str, float] = {}
        self.event_ids: dict[str, set[str]] = {}  # key -> distinct event ids
        self.expected = 0
        self.all_seen = asyncio.Event()
        self._connection: Any = None

    async def __aenter__(self) -> Self:
        import aio_pika

        self._connection = await aio_pika.connect(self.amqp_url, timeout=10)
        channel = await self._connection.channel()
        exchange = await channel.declare_exchange(
            self.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key=self.routing_key)
        await queue.consume(self._on_message, no_ack=True)
        return self

    async def _on_message(self, message: Any) -> None:
        now = time.monotonic()
        try:
            body = json.loads(message.body)
            key = self.key_of(body)
        except (ValueError, KeyError, TypeError, AttributeError):
            return
        if key is None:
            return
        self.seen.setdefault(key, now)
        self.event_ids.setdefault(key, set()).add(str(body.get("event_id")))
        if self.expected and len(self.seen) >= self.expected:
            self.all_seen.set()

    async def __aexit__(self, *exc: object) -> None:
        if self._connection is not None:
            await self._connection.close()


class PaidProbe(EventProbe):
    """`orders.order.paid.v1` per order id."""

    def __init__(self, amqp_url: str, exchange: str) -> None:
        super().__init__(amqp_url, exchange, PAID_EVENT, lambda body: body["payload"]["order_id"])


async def payments(
    base_url: str,
    orders: list[Unpaid],
    *,
    rate: float,
    amqp_url: str,
    exchange: str,
    late_after_s: float = 10.0,
) -> tuple[Measure, int]:
    """POST the dev checkout's `/pay` for each order at `rate` per second (open loop: on
    schedule, whatever the answers), and time each until its paid event; returns the
    latencies and how many were late: not paid within `late_after_s` of their /pay."""
    sent_at: dict[str, float] = {}
    errors: list[str] = []
    async with PaidProbe(amqp_url, exchange) as probe, client(base_url, 64) as http:

        async def pay(order: Unpaid, due: float) -> None:
            # Timed from the moment it was due, so a driver running late hides nothing.
            sent_at[order.order_id] = due
            try:
                response = await http.post(order.pay_path, headers={"cookie": order.cookie})
                if response.status_code >= 400:
                    errors.append(explain(response))
            except httpx.HTTPError as exc:
                errors.append(repr(exc))

        probe.expected = len(orders)
        send_seconds = await on_schedule(len(orders), rate, lambda i, due: pay(orders[i], due))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(probe.all_seen.wait(), late_after_s)
        seen = dict(probe.seen)
    latency = Latencies(
        [
            (seen[o.order_id] - sent_at[o.order_id]) * 1000
            for o in orders
            if o.order_id in seen and seen[o.order_id] - sent_at[o.order_id] <= late_after_s
        ]
    )
    late = len(orders) - len(latency.values_ms)
    return (
        Measure(
            requests=len(orders),
            seconds=send_seconds,
            p50_ms=latency.percentile(50),
            p99_ms=latency.percentile(99),
            errors=len(errors) + late,
            error_detail="; ".join(
                ([f"{late} late (not paid within {late_after_s:g} s)"] if late else [])
                + ([f"{len(errors)} failed /pay: {errors[0]}"] if errors else [])
            ),
        ),
        late,
    )
