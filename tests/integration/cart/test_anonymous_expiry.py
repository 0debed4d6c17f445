"""An anonymous cart's expiry slides on use, and the cart is gone after it (real Redis)."""

from __future__ import annotations

import asyncio

import pytest

from tests.unit.cart.builders import anonymous

pytestmark = pytest.mark.integration

TTL_S = 1.0


async def test_expiry_slides_on_use_and_the_cart_is_gone_after_it(real_cart, catalog) -> None:
    async with real_cart(anonymous_ttl_seconds=int(TTL_S)) as deps:
        service, who, mug = deps.service, anonymous(), catalog.add()
        owner = who.owner
        assert owner is not None
        key = service.anonymous.key(owner.id)
        redis = deps.runtime.redis
        await service.add_to_cart(principal=who, pricing_id=mug.pricing_id, quantity=1, locale=None)
        assert 0 < await redis.pttl(key) <= TTL_S * 1000

        # Used at 0.6 s and 1.2 s: well past the first expiry, still there.
        for _ in range(2):
            await asyncio.sleep(TTL_S * 0.6)
            summary = await service.get_cart_summarized(principal=who, locale=None)
            assert [x.quantity for x in summary.lines] == [1]
            assert await redis.pttl(key) > TTL_S * 1000 * 0.5

        # Left alone for longer than the expiry: gone.
        await asyncio.sleep(TTL_S * 1.5)
        assert await redis.exists(key) == 0
        summary = await service.get_cart_summarized(principal=who, locale=None)
        assert (summary.cart_id, summary.lines) == (None, [])
