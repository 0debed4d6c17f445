"""Prices for cart lines: from a Redis cache kept current by catalog's events, else one catalog call.

A cached price is for showing only: orders re-prices every line from catalog at checkout.

Layout (see docs/adr/002-cart-storage.md):
  `<prefix>:price:<pricing id>`    hash, field `l:<locale>` = {"at": fetched at, "p": PricingInfo}
  `<prefix>:product:<product key>` set of the pricing ids cached for that product
  `<prefix>:price-epoch`           counter, bumped by every catalog event
Catalog's events carry no version, so they cannot be applied in order: an event *drops* the
entries it concerns (the next summary fetches them once) and bumps the epoch, which makes a
lookup that started before the event discard what it fetched instead of caching a stale price.
"""

from __future__ import annotations

import json
import time
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


_FILL = """
if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[1] then return 0 end
local n = (#KEYS - 1) / 2
for i = 1, n do
  redis.call('HSET', KEYS[1 + i], ARGV[3], ARGV[3 + i])
  redis.call('PEXPIRE', KEYS[1 + i], ARGV[2])
  redis.call('SADD', KEYS[1 + n + i], ARGV[3 + n + i])
  redis.call('PEXPIRE', KEYS[1 + n + i], ARGV[2])
end
return 1
"""

_FORGET_PRICING = """
redis.call('INCR', KEYS[1])
return redis.call('DEL', KEYS[2])
"""

_FORGET_PRODUCT = """
redis.call('INCR', KEYS[1])
local ids = redis.call('SMEMBERS', KEYS[2])
for _, id in ipairs(ids) do redis.call('DEL', ARGV[1] .. id) end
redis.call('DEL', KEYS[2])
return #ids
"""


class PriceCache:
    """Catalog prices per pricing id and locale, in Redis."""

    def __init__(
        self, redis: Any, *, prefix: str, ttl_seconds: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl_s = ttl_seconds
        self._clock = clock
        self._fill = redis.register_script(_FILL)
        self._forget_pricing = redis.register_script(_FORGET_PRICING)
        self._forget_product = redis.register_script(_FORGET_PRODUCT)

    @property
    def epoch_key(self) -> str:
        return f"{self._prefix}:price-epoch"

    def price_key(self, pricing_id: str) -> str:
        return f"{self._prefix}:price:{pricing_id}"

    def product_key(self, product_key: str) -> str:
        return f"{self._prefix}:product:{product_key}"

    async def get_many(
        self, ids: Sequence[str], locale: str | None
    ) -> tuple[dict[str, PricingInfo], str]:
        """The fresh cached entries of `ids`, and the epoch to pass to `put_many` (one round trip)."""
        field = _field(locale)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(self.epoch_key)
            for pricing_id in ids:
                pipe.hget(self.price_key(pricing_id), field)
            epoch, *values = await pipe.execute()
        found: dict[str, PricingInfo] = {}
        oldest = self._clock() - self._ttl_s
        for pricing_id, raw in zip(ids, values, strict=True):
            if raw is None:
                continue
            entry = json.loads(raw)
            if entry["at"] >= oldest:
                found[pricing_id] = PricingInfo.model_validate(entry["p"])
        return found, _text(epoch or b"0")

    async def put_many(self, infos: Sequence[PricingInfo], locale: str | None, epoch: str) -> bool:
        """Cache what a lookup returned, unless a catalog event arrived since `get_many`."""
        if not infos:
            return True
        now = self._clock()
        keys = [self.epoch_key]
        keys += [self.price_key(x.pricing_id) for x in infos]
        keys += [self.product_key(x.product_key) for x in infos]
        args: list[Any] = [epoch, self._ttl_s * 1000, _field(locale)]
        args += [json.dumps({"at": now, "p": x.model_dump(mode="json")}) for x in infos]
        args += [x.pricing_id for x in infos]
        return bool(await self._fill(keys=keys, args=args))

    async def forget_pricing(self, pricing_id: str) -> None:
        """A price changed: drop it in every locale."""
        await self._forget_pricing(keys=[self.epoch_key, self.price_key(pricing_id)])

    async def forget_product(self, product_key: str) -> None:
        """A product changed (names, active): drop every cached price of it."""
        await self._forget_product(
            keys=[self.epoch_key, self.product_key(product_key)],
            args=[self.price_key("")],
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

    async def forget_pricing(self, pricing_id: str) -> None:
        if self._cache is not None:
            await self._cache.forget_pricing(pricing_id)

    async def forget_product(self, product_key: str) -> None:
        if self._cache is not None:
            await self._cache.forget_product(product_key)


def _field(locale: str | None) -> str:
    return f"l:{locale or '-'}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
