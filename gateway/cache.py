"""A small response cache for the public catalog pages, in front of the gateway's routing.

Product pages are the same for every shopper, read far more often than the catalog changes,
and cost a service hop plus several queries each. The gateway keeps successful answers for
`GATEWAY_PRODUCT_CACHE_TTL_S` seconds (0 turns it off), per path, query string and
Accept-Language, and serves hits without routing, dependencies or a hop. Search pages (a `q`,
a filter or a sort) have an LRU of their own, so they never push the listing's pages out. A catalog edit shows
within that TTL; shops also get `Cache-Control` so browsers and CDNs can share the work.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CACHED_PREFIX = "/api/store/products"
# Query parameters that make a page a search: those pages get an LRU of their own, so that a
# burst of searches, each with a query of its own, never evicts the listing's pages.
SEARCH_PARAMS = frozenset({"q", "shippable", "price_min", "price_max", "currency", "sort"})


@dataclass(frozen=True)
class _Entry:
    expires: float
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class ProductPageCache:
    """An LRU of whole responses with a time to live."""

    def __init__(
        self,
        *,
        ttl_s: float,
        max_entries: int = 2048,
        max_bytes: int = 4 * 1024 * 1024,
        searches: bool = True,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        # Bodies held at most: pages with queries of their own (deep cursors) are each stored
        # once, and entries of 20 products add up; the budget keeps the gateway's memory flat.
        self.max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[tuple[str, bytes, bytes], _Entry] = OrderedDict()
        # Misses being fetched right now: concurrent requests for the same page wait for the
        # first one instead of all going to the catalog when an entry expires.
        self.inflight: dict[tuple[str, bytes, bytes], asyncio.Event] = {}
        # Search pages: the same bounds again, apart (at most twice the budget in all).
        self.searches: ProductPageCache | None = (
            ProductPageCache(
                ttl_s=ttl_s, max_entries=max_entries, max_bytes=max_bytes, searches=False
            )
            if searches
            else None
        )

    def partition(self, query_string: bytes) -> ProductPageCache:
        """The LRU a page belongs in: the listing's, or the search pages'."""
        if self.searches is not None and is_search(query_string):
            return self.searches
        return self

    def get(self, key: tuple[str, bytes, bytes]) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires < time.monotonic():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: tuple[str, bytes, bytes], entry: _Entry) -> None:
        if len(entry.body) > self.max_bytes:
            return
        self._drop(key)
        self._entries[key] = entry
        self._bytes += len(entry.body)
        now = time.monotonic()
        # The least recently used first: expired ones, then whatever is over the bounds.
        while self._entries:
            oldest_key, oldest = next(iter(self._entries.items()))
            over = len(self._entries) > self.max_entries or self._bytes > self.max_bytes
            if not over and oldest.expires >= now:
                break
            self._drop(oldest_key)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def _drop(self, key: tuple[str, bytes, bytes]) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry.body)


class ProductPageCacheMiddleware:
    """Serve cached product pages; store fresh 200 answers of GET requests."""

    def __init__(self, app: ASGIApp, *, cache: ProductPageCache) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or not scope["path"].startswith(CACHED_PREFIX)
            or self.cache.ttl_s <= 0
        ):
            await self.app(scope, receive, send)
            return
        key = (scope["path"], scope.get("query_string", b""), _accept_language(scope))
        cache = self.cache.partition(key[1])
        hit = cache.get(key)
        if hit is None and key in cache.inflight:
            try:
                await asyncio.wait_for(cache.inflight[key].wait(), 5.0)
            except TimeoutError:
                pass
            hit = cache.get(key)
        if hit is not None:
            scope["route"] = _CACHE_HIT  # so request metrics tell hits apart
            await send(
                {"type": "http.response.start", "status": hit.status, "headers": hit.headers}
            )
            await send({"type": "http.response.body", "body": hit.body})
            return
        done = cache.inflight.setdefault(key, asyncio.Event())
        try:
            await self._fetch(cache, key, scope, receive, send)
        finally:
            done.set()
            if cache.inflight.get(key) is done:
                del cache.inflight[key]

    async def _fetch(
        self,
        cache: ProductPageCache,
        key: tuple[str, bytes, bytes],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        started: Message = {}
        chunks: list[bytes] = []

        async def remember(message: Message) -> None:
            if message["type"] == "http.response.start":
                if message["status"] == 200:
                    age = f"public, max-age={int(self.cache.ttl_s)}".encode()
                    message["headers"] = [
                        *[(k, v) for k, v in message.get("headers", []) if k != b"cache-control"],
                        (b"cache-control", age),
                        (b"vary", b"accept-language"),
                    ]
                started.update(message)
            elif message["type"] == "http.response.body" and started.get("status") == 200:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    headers = [
                        (k, v)
                        for k, v in started.get("headers", [])
                        if k not in (b"set-cookie", b"x-correlation-id")
                    ]
                    cache.put(
                        key,
                        _Entry(time.monotonic() + cache.ttl_s, 200, headers, b"".join(chunks)),
                    )
            await send(message)

        await self.app(scope, receive, remember)


@dataclass(frozen=True)
class _CacheHitRoute:
    path: str = CACHED_PREFIX + " (cache hit)"


_CACHE_HIT = _CacheHitRoute()


def _accept_language(scope: Scope) -> bytes:
    for name, value in scope.get("headers", []):
        if name == b"accept-language":
            return bytes(value[:200])
    return b""


def is_search(query_string: bytes) -> bool:
    """Whether a product page's query asks for a search (any of SEARCH_PARAMS, even empty)."""
    if not query_string:
        return False
    names = (name for name, _ in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
    return any(name in SEARCH_PARAMS for name in names)
