"""Shoppers as a real client behaves: add → billing → checkout → pay on the dev provider's page,
each step retried (bounded) on a connection error, a 5xx or a 409 while the first is running.
Every response is logged with its time, so 5xx after recovery can be counted."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from bench.checkout import BILLING, CHECKOUT
from bench.shop import cookie_header, no_cookie_jar

RETRYABLE = {409, 425, 429, 500, 502, 503, 504}


@dataclass
class Traffic:
    """What every shopper saw: each response's (start time, status), and each paid order."""

    responses: list[tuple[float, int]] = field(default_factory=list)
    server_errors: list[tuple[float, str]] = field(default_factory=list)  # (start, what)
    paid: dict[str, str] = field(default_factory=dict)  # order id -> attempt id, as the client saw
    checkouts: dict[str, str] = field(default_factory=dict)  # order id -> pay path
    gave_up: list[str] = field(default_factory=list)

    def server_errors_since(self, moment: float) -> list[str]:
        return [what for started, what in self.server_errors if started >= moment]


class GaveUp(Exception):
    """A step kept failing past the client's retry budget."""


@dataclass
class Shopper:
    http: httpx.AsyncClient
    traffic: Traffic
    pricing_id: str
    budget_s: float
    cookie: str = ""

    async def send(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        """One step, retried with backoff within the budget, as a patient client would."""
        deadline = time.monotonic() + self.budget_s
        delay = 0.2
        last = ""
        for _ in range(500):  # bounded; the deadline ends it sooner
            started = time.monotonic()
            headers = {"cookie": self.cookie} if self.cookie else {}
            try:
                response = await self.http.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
            except httpx.HTTPError as exc:
                last = repr(exc)
            else:
                self.traffic.responses.append((started, response.status_code))
                if response.status_code >= 500:
                    what = f"{method} {path} → {response.status_code} {response.text[:160]}"
                    self.traffic.server_errors.append((started, what))
                self.cookie = cookie_header(response, self.cookie)
                if response.status_code not in RETRYABLE:
                    return response
                last = f"{response.status_code} {response.text[:120]}"
            if time.monotonic() + delay > deadline:
                break
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, 3.0)
        raise GaveUp(f"{method} {path}: {last}")

    async def buy(self) -> str:
        """One purchase; returns the order id once the pay page answered."""
        order_id, pay_path, attempt_id = await self.checkout()
        await self.pay(order_id, pay_path, attempt_id)
        return order_id

    async def checkout(self) -> tuple[str, str, str]:
        """Add, billing, checkout: (order id, pay path, attempt id)."""
        added = await self.send(
            "POST", "/api/store/cart/lines", json={"pricing_id": self.pricing_id, "quantity": 1}
        )
        _expect(added, 200)
        _expect(await self.send("POST", "/api/payments/billing", json=BILLING), 200, 201)
        body = _expect(await self.send("POST", "/api/store/checkout", json=CHECKOUT), 200).json()
        order_id = body["order"]["id"]
        pay_path = urlsplit(body["payment"]["checkout_url"]).path + "/pay"
        self.traffic.checkouts[order_id] = pay_path
        return order_id, pay_path, body["payment"]["attempt_id"]

    async def pay(self, order_id: str, pay_path: str, attempt_id: str) -> None:
        paid = await self.send("POST", pay_path)
        if paid.status_code < 400:
            self.traffic.paid[order_id] = attempt_id


def _expect(response: httpx.Response, *statuses: int) -> httpx.Response:
    if response.status_code not in statuses:
        raise GaveUp(f"{response.request.url.path} → {response.status_code} {response.text[:160]}")
    return response


async def shop_until(
    stop: asyncio.Event,
    *,
    base_url: str,
    pricing_id: str,
    traffic: Traffic,
    shoppers: int,
    budget_s: float,
    max_purchases: int,
) -> None:
    """`shoppers` concurrent new shoppers buying until `stop` (or `max_purchases` in total)."""
    done = 0
    limits = httpx.Limits(max_connections=shoppers * 2)
    async with httpx.AsyncClient(
        base_url=base_url, timeout=15, cookies=no_cookie_jar(), limits=limits
    ) as http:

        async def one() -> None:
            nonlocal done
            while not stop.is_set() and done < max_purchases:
                done += 1
                shopper = Shopper(http, traffic, pricing_id, budget_s)
                try:
                    await shopper.buy()
                except (GaveUp, KeyError, ValueError) as exc:
                    traffic.gave_up.append(str(exc)[:200])

        await asyncio.gather(*(one() for _ in range(shoppers)))


async def first_price(base_url: str) -> str:
    async with httpx.AsyncClient(base_url=base_url, timeout=15) as http:
        page = (await http.get("/api/store/products", params={"limit": 50})).json()
    for product in page["items"]:
        for price in product["prices"]:
            if price["interval"] is None:
                return str(price["id"])
    raise RuntimeError("the catalog has no one-off price")
