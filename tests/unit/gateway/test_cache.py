"""The gateway's product page cache: what it keeps, for how long, and what it never shares."""

from __future__ import annotations

import httpx
from fastapi import FastAPI, Response

from gateway.cache import ProductPageCache, ProductPageCacheMiddleware


def app_counting_calls(ttl_s: float) -> tuple[FastAPI, list[str], ProductPageCache]:
    app = FastAPI()
    calls: list[str] = []
    cache = ProductPageCache(ttl_s=ttl_s)
    app.add_middleware(ProductPageCacheMiddleware, cache=cache)

    @app.get("/api/store/products")
    async def products(response: Response, locale: str = "en") -> dict[str, str]:
        calls.append(locale)
        response.set_cookie("store_anon", "someone")
        return {"locale": locale, "call": str(len(calls))}

    @app.get("/api/store/products/{key}")
    async def product(key: str) -> Response:
        calls.append(key)
        return Response(status_code=404)

    @app.get("/api/store/cart")
    async def cart() -> dict[str, int]:
        calls.append("cart")
        return {"lines": 0}

    return app, calls, cache


async def get(app: FastAPI, path: str, **kwargs: object) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        return await c.get(path, **kwargs)  # type: ignore[arg-type]


async def test_pages_are_served_from_cache_per_query_and_language() -> None:
    app, calls, _ = app_counting_calls(ttl_s=60)
    first = await get(app, "/api/store/products", params={"locale": "de"})
    second = await get(app, "/api/store/products", params={"locale": "de"})
    assert first.json() == second.json() and calls == ["de"]
    assert second.headers["cache-control"] == "public, max-age=60"
    assert "set-cookie" not in second.headers, "a cached page never hands out someone's cookie"
    await get(app, "/api/store/products", params={"locale": "fr"})
    await get(
        app, "/api/store/products", params={"locale": "de"}, headers={"accept-language": "fr"}
    )
    assert calls == ["de", "fr", "de"]


async def test_errors_and_other_paths_are_never_cached() -> None:
    app, calls, _ = app_counting_calls(ttl_s=60)
    for _ in range(2):
        assert (await get(app, "/api/store/products/nope")).status_code == 404
        await get(app, "/api/store/cart")
    assert calls == ["nope", "cart", "nope", "cart"]


async def test_entries_expire_and_a_zero_ttl_turns_it_off(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import gateway.cache as module

    now = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: now[0])
    app, calls, _ = app_counting_calls(ttl_s=5)
    await get(app, "/api/store/products")
    now[0] += 4
    await get(app, "/api/store/products")
    now[0] += 2
    await get(app, "/api/store/products")
    assert len(calls) == 2
    off, off_calls, _ = app_counting_calls(ttl_s=0)
    await get(off, "/api/store/products")
    await get(off, "/api/store/products")
    assert len(off_calls) == 2


def test_the_cache_is_bounded() -> None:
    cache = ProductPageCache(ttl_s=60, max_entries=2)
    from gateway.cache import _Entry

    for n in range(3):
        cache.put((str(n), b"", b""), _Entry(10**9, 200, [], b""))
    assert cache.get(("0", b"", b"")) is None and cache.get(("2", b"", b"")) is not None


def test_the_cache_holds_at_most_its_byte_budget_and_forgets_expired_pages() -> None:
    from gateway.cache import _Entry

    cache = ProductPageCache(ttl_s=60, max_bytes=1000)
    for n in range(10):  # deep pages, each with a query of its own
        cache.put((str(n), b"", b""), _Entry(10**9, 200, [], b"x" * 300))
    assert cache.size_bytes <= 1000
    assert cache.get(("9", b"", b"")) is not None and cache.get(("0", b"", b"")) is None

    cache.put(("huge", b"", b""), _Entry(10**9, 200, [], b"x" * 1001))
    assert cache.get(("huge", b"", b"")) is None and cache.size_bytes <= 1000

    expiring = ProductPageCache(ttl_s=60)
    expiring.put(("old", b"", b""), _Entry(0, 200, [], b"x" * 300))  # expired long ago
    expiring.put(("new", b"", b""), _Entry(10**9, 200, [], b"y"))
    assert expiring.size_bytes == 1


async def test_concurrent_misses_fetch_the_page_once() -> None:
    import asyncio

    app = FastAPI()
    calls: list[int] = []
    app.add_middleware(ProductPageCacheMiddleware, cache=ProductPageCache(ttl_s=60))

    @app.get("/api/store/products")
    async def slow() -> dict[str, int]:
        calls.append(1)
        await asyncio.sleep(0.05)
        return {"n": len(calls)}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        answers = await asyncio.gather(*(c.get("/api/store/products") for _ in range(20)))
    assert calls == [1]
    assert {a.json()["n"] for a in answers} == {1}


def test_search_pages_never_evict_the_listing() -> None:
    from gateway.cache import _Entry, is_search

    cache = ProductPageCache(ttl_s=60, max_entries=2)
    listing = ("/api/store/products", b"limit=20", b"")
    cache.partition(listing[1]).put(listing, _Entry(10**9, 200, [], b"list"))
    for n in range(50):  # a burst of searches, each with a query of its own
        key = ("/api/store/products", f"q=word{n}".encode(), b"")
        cache.partition(key[1]).put(key, _Entry(10**9, 200, [], b"found"))
    assert cache.partition(listing[1]).get(listing) is not None
    assert cache.partition(b"q=word49").get(("/api/store/products", b"q=word49", b"")) is not None
    assert is_search(b"limit=5&sort=newest") and is_search(b"q=")
    assert not is_search(b"limit=5&cursor=abc&recurring=true") and not is_search(b"")
