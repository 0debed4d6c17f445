"""Preparing the shop for the workloads, through its own APIs: reading the catalog, making
shoppers with carts, and growing the catalog to a given size."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from http.cookiejar import CookieJar
from typing import Any

import httpx

PAGE_LIMIT = 100


@dataclass(frozen=True)
class Price:
    id: str
    product_key: str
    currency: str


class PrepareError(RuntimeError):
    """The shop did not answer the way a workload needs; the message says what it got."""


def explain(response: httpx.Response) -> str:
    """A short description of an unexpected response (problem+json title and code if any)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and ("title" in body or "code" in body):
        what = f"{body.get('title', '')} ({body.get('code', '')})".strip()
        detail = str(body.get("detail") or "")[:120]
        return f"{response.request.method} {response.request.url.path} → {response.status_code} {what} {detail}".strip()
    return f"{response.request.method} {response.request.url.path} → {response.status_code} {response.text[:120]!r}"


def expect(response: httpx.Response, *statuses: int) -> httpx.Response:
    if response.status_code not in (statuses or (200,)):
        raise PrepareError(explain(response))
    return response


def cookie_header(response: httpx.Response, previous: str = "") -> str:
    """The Cookie header a browser would send after this response."""
    jar = dict(part.split("=", 1) for part in previous.split("; ") if "=" in part)
    jar.update(dict(response.cookies.items()))
    return "; ".join(f"{k}={v}" for k, v in jar.items())


class _ForgetfulJar(CookieJar):
    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def set_cookie(self, cookie: Any) -> None:
        return None


def no_cookie_jar() -> CookieJar:
    """A client jar that keeps nothing: the harness carries each shopper's cookie itself.
    (A CookieJar, not httpx.Cookies: the client copies the latter into a jar of its own.)"""
    return _ForgetfulJar()


def client(base_url: str, connections: int = 32) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=15,
        cookies=no_cookie_jar(),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


async def catalog_prices(
    http: httpx.AsyncClient, *, max_pages: int = 200
) -> tuple[list[str], list[Price]]:
    """Product keys and one-off prices of the listed catalog (bounded walk). Each walk carries
    a parameter of its own that the store ignores: the gateway caches list pages for a few
    seconds, and a walk right after the catalog grew must see the grown catalog."""
    keys: list[str] = []
    prices: list[Price] = []
    cursor = None
    walk = uuid.uuid4().hex[:8]
    for _ in range(max_pages):
        params: dict[str, Any] = {"limit": PAGE_LIMIT, "walk": walk}
        if cursor:
            params["cursor"] = cursor
        page = expect(await send(http, "GET", "/api/store/products", params=params)).json()
        for product in page["items"]:
            keys.append(product["key"])
            for price in product.get("prices", []):
                if price.get("interval") is None:
                    prices.append(Price(price["id"], product["key"], price["currency"]))
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return keys, prices


def one_currency(prices: list[Price], *, distinct_products: bool = True) -> list[Price]:
    """The prices in the most common currency (a cart holds one currency), one per product."""
    if not prices:
        return []
    currency = Counter(p.currency for p in prices).most_common(1)[0][0]
    chosen: dict[str, Price] = {}
    for price in prices:
        if price.currency == currency and (
            not distinct_products or price.product_key not in chosen
        ):
            chosen[price.product_key if distinct_products else price.id] = price
    return list(chosen.values())


async def send(
    http: httpx.AsyncClient, method: str, path: str, *, attempts: int = 3, **kwargs: Any
) -> httpx.Response:
    """One preparation request, retried on a 5xx or a network error: preparing is not
    measuring, and one overloaded moment should not cost a whole workload."""
    for attempt in range(attempts):
        try:
            response = await http.request(method, path, **kwargs)
        except httpx.HTTPError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))
            continue
        if response.status_code < 500 or attempt == attempts - 1:
            return response
        await asyncio.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


async def make_shoppers(
    http: httpx.AsyncClient,
    *,
    count: int,
    lines: list[Price],
    deadline: float,
    concurrency: int = 16,
) -> list[str]:
    """`count` anonymous shoppers, each with a cart of `lines` (one unit each); their cookies."""
    if not lines:
        raise PrepareError("no one-off prices in the catalog")
    cookies: list[str] = []
    errors: list[str] = []
    queue = list(range(count))

    async def one() -> None:
        cookie = ""
        for price in lines:
            if time.monotonic() > deadline:
                raise PrepareError("out of time while filling carts")
            response = await send(
                http,
                "POST",
                "/api/store/cart/lines",
                json={"pricing_id": price.id, "quantity": 1},
                headers={"cookie": cookie} if cookie else {},
            )
            expect(response)
            cookie = cookie_header(response, cookie)
        if not cookie:
            raise PrepareError("adding to the cart set no anonymous cookie")
        cart = expect(await send(http, "GET", "/api/store/cart", headers={"cookie": cookie})).json()
        if len(cart.get("lines", [])) != len(lines):
            raise PrepareError(
                f"cart has {len(cart.get('lines', []))} lines after adding {len(lines)} prices"
            )
        cookies.append(cookie)

    async def worker() -> None:
        while queue and not errors:
            queue.pop()
            try:
                await one()
            except (PrepareError, httpx.HTTPError) as exc:
                errors.append(str(exc) or repr(exc))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if errors:
        raise PrepareError(errors[0])
    return cookies


# --- growing the catalog ----------------------------------------------------------------------


async def admin_products(
    catalog_url: str,
    token: str,
    *,
    count: int,
    currency: str,
    deadline: float,
    concurrency: int = 16,
) -> int:
    """Add `count` products (one one-off price each) through the catalog's write API."""
    made = 0
    failures: list[str] = []
    run = uuid.uuid4().hex[:6]
    queue = list(range(count))
    async with httpx.AsyncClient(
        base_url=catalog_url, timeout=15, headers={"x-service-token": token}
    ) as http:

        async def worker() -> None:
            nonlocal made
            while queue and not failures and time.monotonic() < deadline:
                i = queue.pop()
                body = {
                    "key": f"bench-{run}-{i:06d}",
                    "translations": {
                        "en": {"name": f"Bench product {i}", "description": "Benchmark item"},
                        "de": {"name": f"Testprodukt {i}", "description": "Benchmark-Artikel"},
                    },
                    "prices": [{"unit_amount": 100 + i % 5000, "currency": currency}],
                }
                response = await http.post("/admin/products", json=body)
                if response.status_code not in (200, 201):
                    failures.append(explain(response))
                    return
                made += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    if failures:
        raise PrepareError(f"catalog admin API: {failures[0]}")
    return made


def bulk_generator() -> Any | None:
    """The catalog's own generator, `services.catalog.bulk.generate_products`, if it exists."""
    try:
        from services.catalog import bulk
    except ImportError:
        return None
    return getattr(bulk, "generate_products", None)


async def generate(database_url: str, count: int, currency: str, *, start: int) -> str:
    """Add `count` products straight into the catalog's database with its generator, then
    ANALYZE (what autovacuum would do shortly after such a load anyway)."""
    from sqlalchemy import text

    from libs.runtime.db import create_engine

    generate_products = bulk_generator()
    if generate_products is None:
        raise PrepareError("services/catalog/bulk.py generate_products is not available")
    engine = create_engine(database_url)
    try:
        await generate_products(engine, count, currency, key_prefix="bench", start=start)
        async with engine.begin() as connection:
            await connection.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
    return "services/catalog/bulk.py"
