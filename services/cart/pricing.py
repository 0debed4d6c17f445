"""Prices for cart lines: from a Redis cache kept current by catalog's events, else one catalog call.

A cached price is for showing only: orders re-prices every line from catalog at checkout.

Layout (see docs/adr/002-cart-storage.md):
  `<prefix>:price:<locale or ->:<pricing id>`  PricingInfo JSON, expiring after the cache TTL
  `<prefix>:price-locales`                     set of the locales cached
  `<prefix>:product:<product key>`             set of the pricing ids cached for that product
  `<prefix>:price-epoch`                       counter, bumped by every catalog event
A summary reads the epoch and all its prices with ONE `MGET`. Catalog's events carry no
version, so they cannot be applied in order: an event *drops* the entries it concerns (the next
summary fetches them once) and bumps the epoch, which makes a lookup that started before the
event discard what it fetched instead of caching a stale price.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from libs.contracts.catalog import PricingInfo, PricingLookupIn, PricingLookupOut

LOOKUP_PATH = "/internal/pricings/lookup"


class PricingSource(Protocol):
    async def lookup(self, ids: Sequence[str], locale: str | None) -> PricingLookupOut: ...


class CatalogPricing:
    """Catalog's batch lookup: any number of pricing ids, one call."""

    def __init__(self, client: Callable[[], Any]) -> None:
        self._client = client

    async def lookup(self, ids: Sequence[str], locale: str | None) -> PricingLookupOut:
        body = PricingLookupIn(ids=list(ids), locale=locale).model_dump()
        result: PricingLookupOut = await self._client().call(
            "POST", LOOKUP_PATH, PricingLookupOut, json=body
        )
        return result


# KEYS: epoch, then n entry keys, then n product sets, then the locale set.
# ARGV: expected epoch, ttl ms, locale, then n JSON values, then n pricing ids.
_FILL = """
if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[1] then return 0 end
local n = (#KEYS - 2) / 2
for i = 1, n do
  redis.call('SET', KEYS[1 + i], ARGV[3 + i], 'PX', ARGV[2])
  redis.call('SADD', KEYS[1 + n + i], ARGV[3 + n + i])
  redis.call('PEXPIRE', KEYS[1 + n + i], ARGV[2])
end
redis.call('SADD', KEYS[#KEYS], ARGV[3])
redis.call('PEXPIRE', KEYS[#KEYS], ARGV[2])
return 1
"""

# KEYS: epoch, locale set, and for a product its set of pricing ids. ARGV: entry key prefix,
# then the pricing ids to drop (a product's are read from its set).
_FORGET = """
redis.call('INCR', KEYS[1])
local ids = {}
for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end
if #KEYS == 3 then
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[3])) do ids[#ids + 1] = id end
  redis.call('DEL', KEYS[3])
end
local dropped = 0
for _, locale in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  for _, id in ipairs(ids) do
    dropped = dropped + redis.call('DEL', ARGV[1] .. locale .. ':' .. id)
  end
end
return dropped
"""


class PriceCache:
    """Catalog prices per pricing id and locale, in Redis."""

    def __init__(self, redis: Any, *, prefix: str, ttl_seconds: int) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl_ms = ttl_seconds * 1000
        self._fill = redis.register_script(_FILL)
        self._forget = redis.register_script(_FORGET)

    @property
    def epoch_key(self) -> str:
        return f"{self._prefix}:price-epoch"

    @property
    def locales_key(self) -> str:
        return f"{self._prefix}:price-locales"

    def entry_key(self, pricing_id: str, locale: str | None) -> str:
        # The locale comes first: it holds no ':' (the API checks it), a pricing id may.
        return f"{self._prefix}:price:{_locale(locale)}:{pricing_id}"

    def product_key(self, product_key: str) -> str:
        return f"{self._prefix}:product:{product_key}"

    async def get_many(
        self, ids: Sequence[str], locale: str | None
    ) -> tuple[dict[str, PricingInfo], str]:
        """The cached entries of `ids`, and the epoch to pass to `put_many` (one command)."""
        keys = [self.entry_key(pricing_id, locale) for pricing_id in ids]
        epoch, *values = await self._redis.mget([self.epoch_key, *keys])
        found = {
            pricing_id: _parsed(raw)
            for pricing_id, raw in zip(ids, values, strict=True)
            if raw is not None
        }
        return found, _text(epoch or b"0")

    async def put_many(self, infos: Sequence[PricingInfo], locale: str | None, epoch: str) -> bool:
        """Cache what a lookup returned, unless a catalog event arrived since `get_many`."""
        if not infos:
            return True
        keys = [self.epoch_key]
        keys += [self.entry_key(x.pricing_id, locale) for x in infos]
        keys += [self.product_key(x.product_key) for x in infos]
        keys.append(self.locales_key)
        args: list[Any] = [epoch, self._ttl_ms, _locale(locale)]
        args += [x.model_dump_json() for x in infos]
        args += [x.pricing_id for x in infos]
        return bool(await self._fill(keys=keys, args=args))

    async def forget_pricing(self, pricing_id: str) -> None:
        """A price changed: drop it in every locale."""
        await self._forget(
            keys=[self.epoch_key, self.locales_key],
            args=[f"{self._prefix}:price:", pricing_id],
        )

    async def forget_product(self, product_key: str) -> None:
        """A product changed (names, active): drop every cached price of it."""
        await self._forget(
            keys=[self.epoch_key, self.locales_key, self.product_key(product_key)],
            args=[f"{self._prefix}:price:"],
        )


class Prices:
    """Pricing info for a set of lines: cached entries, then ONE catalog call for the rest."""

    def __init__(self, source: PricingSource, cache: PriceCache | None) -> None:
        self._source = source
        self._cache = cache

    async def lookup(
        self,
        ids: Iterable[str],
        locale: str | None,
        *,
        known: Mapping[str, PricingInfo] | None = None,
    ) -> dict[str, PricingInfo]:
        """Info per pricing id; ids catalog does not know are absent from the result."""
        wanted = list(dict.fromkeys(ids))
        found = {i: known[i] for i in wanted if known and i in known}
        missing = [i for i in wanted if i not in found]
        epoch = "0"
        if missing and self._cache is not None:
            cached, epoch = await self._cache.get_many(missing, locale)
            found.update(cached)
            missing = [i for i in missing if i not in cached]
        if missing:
            answer = await self._source.lookup(missing, locale)
            fetched = [x for x in answer.items if x.pricing_id in missing]
            found.update({x.pricing_id: x for x in fetched})
            if self._cache is not None:
                await self._cache.put_many(fetched, locale, epoch)
        return found

    async def cached(self, ids: Iterable[str], locale: str | None) -> dict[str, PricingInfo]:
        """What the cache holds of `ids` (one command), without asking catalog."""
        if self._cache is None:
            return {}
        found, _ = await self._cache.get_many(list(dict.fromkeys(ids)), locale)
        return found

    async def forget_pricing(self, pricing_id: str) -> None:
        if self._cache is not None:
            await self._cache.forget_pricing(pricing_id)

    async def forget_product(self, product_key: str) -> None:
        if self._cache is not None:
            await self._cache.forget_product(product_key)


@functools.lru_cache(maxsize=4096)
def _parsed(raw: bytes | str) -> PricingInfo:
    # A summary reads the same few cached entries again and again: the same bytes parse to
    # the same (frozen) PricingInfo, so each is validated once, not once per line per request.
    return PricingInfo.model_validate_json(raw)


def _locale(locale: str | None) -> str:
    return locale or "-"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
