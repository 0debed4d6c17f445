"""Property: for any two carts, merging gives the per-price sums capped at the maximum, and
merging again changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.cart.bootstrap import CartDeps
from tests.unit.cart.builders import anonymous, cart_settings, published, running_cart, user
from tests.unit.cart.fakes import FakeCatalog

MAXIMUM = 10


@pytest.fixture
async def capped(tmp_path: Path) -> AsyncIterator[tuple[CartDeps, list[str]]]:
    catalog = FakeCatalog()
    prices = [catalog.add(100 * n).pricing_id for n in range(1, 7)]
    settings_ = cart_settings(tmp_path, max_quantity_per_line=MAXIMUM)
    async with running_cart(settings_, catalog) as deps:
        yield deps, prices


cart_contents = st.dictionaries(st.integers(0, 5), st.integers(1, MAXIMUM), max_size=6)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(user_cart=cart_contents, anonymous_cart=cart_contents)
async def test_merge_sums_per_price_capped_and_is_idempotent(
    capped: tuple[CartDeps, list[str]],
    user_cart: dict[int, int],
    anonymous_cart: dict[int, int],
) -> None:
    deps, prices = capped
    service = deps.service
    anon, usr = anonymous(), user()  # fresh shoppers for every example
    for who, content in ((usr, user_cart), (anon, anonymous_cart)):
        for index, quantity in content.items():
            await service.add_to_cart(
                principal=who, pricing_id=prices[index], quantity=quantity, locale=None
            )
    assert anon.anonymous_id and usr.user_id

    result = await service.anonymous_to_user(anonymous_id=anon.anonymous_id, user_id=usr.user_id)

    expected = {
        prices[i]: min(user_cart.get(i, 0) + anonymous_cart.get(i, 0), MAXIMUM)
        for i in set(user_cart) | set(anonymous_cart)
    }
    assert result.merged
    assert {x.pricing_id: x.quantity for x in result.cart.lines} == expected
    over = {
        prices[i]: user_cart.get(i, 0) + anonymous_cart.get(i, 0) - MAXIMUM
        for i in set(user_cart) & set(anonymous_cart)
        if user_cart[i] + anonymous_cart[i] > MAXIMUM
    }
    assert {d.pricing_id: d.quantity for d in result.dropped} == over
    assert (await service.get_cart_summarized(principal=anon, locale=None)).lines == []

    events_before = await published(deps)
    again = await service.anonymous_to_user(anonymous_id=anon.anonymous_id, user_id=usr.user_id)
    assert not again.merged
    assert again.cart == result.cart
    assert await service.get_cart_summarized(principal=usr, locale=None) == result.cart
    assert await published(deps) == events_before
