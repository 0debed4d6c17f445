"""What a shopper and an operator see through the gateway's published port on 127.0.0.1."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.checkout import BILLING, CHECKOUT
from libs.contracts.topology import CONSUMERS

# Every consumer keeps its inbox (and its outbox) in a database of its own, notifications too.
DATABASES = {name: f"store_{name}" for name in CONSUMERS}


class CheckFailed(AssertionError):
    """What the shop did differs from what it should do."""


def expect(condition: object, message: str) -> None:
    """Fail the running check with `message` unless `condition` holds."""
    if not condition:
        raise CheckFailed(message)


def ok(response: httpx.Response, status: int = 200) -> Any:
    """The JSON body of a response that had `status`."""
    expect(
        response.status_code == status,
        f"{response.request.method} {response.request.url.path}: {response.status_code} "
        f"{response.text[:300]}",
    )
    return response.json() if "json" in response.headers.get("content-type", "") else None


@dataclass
class Shop:
    """The gateway at 127.0.0.1:port, and what the drive left in it to find again."""

    port: int
    public_url: str
    cart_lines: list[dict[str, Any]] = field(default_factory=list)
    cart_shopper: httpx.Client | None = None
    paid_orders: list[tuple[httpx.Client, str]] = field(default_factory=list)

    def client(self) -> httpx.Client:
        """A new shopper: its own cookie jar."""
        return httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=15)

    def wait_ready(self, seconds: int = 120) -> None:
        """Until /readyz answers 200 (after a start or restart: 503 for a few seconds)."""
        with self.client() as probe:
            for _ in range(seconds):
                try:
                    if probe.get("/readyz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(1)
        raise CheckFailed(f"/readyz did not answer 200 within {seconds} s")

    def one_off_price(self, client: httpx.Client) -> dict[str, Any]:
        """The first one-off price of the catalog."""
        items = ok(client.get("/api/store/products", params={"limit": 100}))["items"]
        prices = [p for item in items for p in item["prices"] if p["interval"] is None]
        expect(prices, "the catalog has no one-off price: did setupproducts run?")
        return prices[0]

    # --- the checks ----------------------------------------------------------------------------

    def products_in_two_locales(self) -> None:
        """Products listed, and their texts follow the locale."""
        with self.client() as client:
            items = ok(client.get("/api/store/products", params={"limit": 100}))["items"]
            expect(items, "no products")
            key = items[0]["key"]
            en = ok(client.get(f"/api/store/products/{key}", params={"locale": "en"}))
            de = ok(client.get(f"/api/store/products/{key}", headers={"accept-language": "de-DE"}))
            expect(en["name"] != de["name"], f"{key}: same name in en and de ({en['name']!r})")

    def anonymous_cart(self) -> None:
        """A line added without an account stays in the cart its cookie names."""
        shopper = self.client()
        price = self.one_off_price(shopper)
        ok(shopper.post("/api/store/cart/lines", json={"pricing_id": price["id"], "quantity": 3}))
        expect("store_anon" in shopper.cookies, "no anonymous cookie was set")
        self.cart_lines = ok(shopper.get("/api/store/cart"))["lines"]
        expect(len(self.cart_lines) == 1, f"cart lines: {self.cart_lines}")
        with self.client() as stranger:
            expect(ok(stranger.get("/api/store/cart"))["lines"] == [], "a stranger sees the cart")
        self.cart_shopper = shopper

    def checkout_pay_paid(self) -> None:
        """Checkout, press Pay on the dev provider's page, and the order shows paid."""
        shopper = self.client()
        price = self.one_off_price(shopper)
        ok(shopper.post("/api/store/cart/lines", json={"pricing_id": price["id"], "quantity": 2}))
        body = ok(shopper.post("/api/store/checkout", json={**CHECKOUT, "billing": BILLING}))
        order, payment = body["order"], body["payment"]
        expect(
            payment["checkout_url"].startswith(self.public_url),
            f"the pay page {payment['checkout_url']} is not under {self.public_url}",
        )
        path = urlsplit(payment["checkout_url"]).path
        ok(shopper.get(path))
        pressed = shopper.post(f"{path}/pay")
        expect(pressed.status_code == 303, f"pay: {pressed.status_code} {pressed.text[:200]}")
        self.wait_paid(shopper, order["id"])
        self.paid_orders.append((shopper, order["id"]))

    def wait_paid(self, shopper: httpx.Client, order_id: str, seconds: int = 60) -> None:
        """Until the order shows paid (the payment event travels through the broker)."""
        for _ in range(seconds * 4):
            if ok(shopper.get(f"/api/store/orders/{order_id}"))["paid"] is not None:
                return
            time.sleep(0.25)
        raise CheckFailed(f"order {order_id} not paid after {seconds} s")

    def operations_endpoints(self) -> None:
        """/readyz, /metrics and /asyncapi answer through the gateway."""
        with self.client() as client:
            ready = ok(client.get("/readyz"))
            expect(ready["checks"] and all(ready["checks"].values()), f"/readyz: {ready}")
            metrics = client.get("/metrics")
            expect("store_http_requests_total" in metrics.text, "/metrics lacks request counts")
            channels = ok(client.get("/asyncapi"))["channels"].values()
            expect("orders.order.paid.v1" in {c["address"] for c in channels}, "/asyncapi")

    def everything_still_there(self) -> None:
        """The anonymous cart (Redis) and every paid order (PostgreSQL) are as they were."""
        expect(self.cart_shopper is not None and self.paid_orders, "nothing to find again")
        assert self.cart_shopper is not None
        lines = ok(self.cart_shopper.get("/api/store/cart"))["lines"]
        expect(lines == self.cart_lines, f"the cart changed: {lines} != {self.cart_lines}")
        for shopper, order_id in self.paid_orders:
            order = ok(shopper.get(f"/api/store/orders/{order_id}"))
            expect(order["paid"] is not None, f"order {order_id} is no longer paid")

    def requests_served(self, count: int = 40) -> None:
        """Every one of `count` requests across the services is answered."""
        with self.client() as client:
            for _ in range(count // 2):
                ok(client.get("/api/store/products", params={"limit": 5}))
                ok(client.get("/api/store/cart"))


def events_handled_once(sql: Any) -> str:
    """Every event in any outbox was published, and handled exactly once by each subscriber."""
    published: dict[str, tuple[str, str]] = {}
    for producer, database in DATABASES.items():
        for event_id, kind, sent in sql(
            database, "SELECT event_id, type, published_at FROM outbox"
        ):
            expect(sent, f"{producer}: event {kind} {event_id} never published")
            published[event_id] = (producer, kind)
    handled: dict[tuple[str, str], int] = {}
    for database in DATABASES.values():
        for consumer, event_id, count in sql(
            database, "SELECT consumer, event_id, count(*) FROM inbox GROUP BY 1, 2"
        ):
            handled[(consumer, event_id)] = int(count)
    expected = 0
    for event_id, (_, kind) in published.items():
        for consumer, kinds in CONSUMERS.items():
            if kind in kinds:
                expected += 1
                times = handled.get((consumer, event_id), 0)
                expect(times == 1, f"{kind} {event_id}: handled {times} times by {consumer}")
    paid_orders = int(
        sql("store_orders", "SELECT count(*) FROM orders WHERE paid IS NOT NULL")[0][0]
    )
    paid_events = sum(1 for _, kind in published.values() if kind == "orders.order.paid.v1")
    expect(paid_orders == paid_events, f"{paid_orders} paid orders, {paid_events} paid events")
    return f"{len(published)} events, {expected} deliveries, each handled once"
