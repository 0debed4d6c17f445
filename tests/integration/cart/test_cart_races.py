"""Carts on the real PostgreSQL and Redis: racing requests never lose or resurrect anything."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import inspect

from libs.contracts.common import Principal
from libs.runtime.problems import ProblemError
from services.cart.bootstrap import CartDeps
from services.cart.service import CartService
from tests.unit.cart.builders import anonymous, published, user
from tests.unit.cart.fakes import FakeCatalog

pytestmark = pytest.mark.integration

PRINCIPALS = [anonymous, user]


async def add(service: CartService, who: Principal, pricing_id: str, quantity: int = 1):
    return await service.add_to_cart(
        principal=who, pricing_id=pricing_id, quantity=quantity, locale=None
    )


async def attempt(action):
    """The result of an action, or the problem code it answered with."""
    try:
        return await action
    except ProblemError as error:
        return error.code


async def test_migrations_build_the_schema_on_postgresql(deps: CartDeps) -> None:
    async with deps.runtime.engine.connect() as connection:
        tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert {"carts", "cart_lines", "cart_merges", "outbox", "inbox", "alembic_version"} <= tables


@pytest.mark.parametrize("make", PRINCIPALS)
async def test_100_concurrent_adds_of_one_price_give_exactly_100(
    make, deps: CartDeps, catalog: FakeCatalog
) -> None:
    who, mug = make(), catalog.add()
    results = await asyncio.gather(*(add(deps.service, who, mug.pricing_id) for _ in range(100)))
    assert sorted(r.lines[0].quantity for r in results) == list(range(1, 101))
    summary = await deps.service.get_cart_summarized(principal=who, locale=None)
    assert [(x.pricing_id, x.quantity) for x in summary.lines] == [(mug.pricing_id, 100)]


@pytest.mark.parametrize("make", PRINCIPALS)
async def test_concurrent_adds_never_exceed_the_maximum(make, real_cart, catalog) -> None:
    async with real_cart(max_quantity_per_line=10) as deps:
        who, mug = make(), catalog.add()
        results = await asyncio.gather(
            *(attempt(add(deps.service, who, mug.pricing_id, 3)) for _ in range(8))
        )
        assert sum(1 for r in results if r == "quantity_exceeds_maximum") == 5
        summary = await deps.service.get_cart_summarized(principal=who, locale=None)
        assert [x.quantity for x in summary.lines] == [9]


@pytest.mark.parametrize("make", PRINCIPALS)
async def test_concurrent_add_and_remove_never_resurrect_a_removed_line(
    make, deps: CartDeps, catalog: FakeCatalog
) -> None:
    service, who, mug = deps.service, make(), catalog.add()
    removed = (await add(service, who, mug.pricing_id, 5)).lines[0].line_id

    actions = [add(service, who, mug.pricing_id) for _ in range(40)]
    for position in (5, 15, 25):
        actions.insert(
            position, service.remove_line_from_cart(principal=who, line_id=removed, locale=None)
        )
    results = await asyncio.gather(*(attempt(a) for a in actions))

    assert results.count("line_not_found") == 2  # the line was removed exactly once
    summary = await service.get_cart_summarized(principal=who, locale=None)
    lines = [x for x in summary.lines if x.pricing_id == mug.pricing_id]
    # Whatever interleaving happened, the line left is a new one holding exactly the adds
    # made after the removal — the removed line's 5 units never come back.
    adds_into = {}
    for result in results:
        if not isinstance(result, str):
            for line in result.lines:
                adds_into.setdefault(line.line_id, set()).add(line.quantity)
    if lines:
        [line] = lines
        assert line.line_id != removed
        assert line.quantity == len(adds_into[line.line_id])
        assert adds_into[line.line_id] == set(range(1, line.quantity + 1))


@pytest.mark.parametrize("make", PRINCIPALS)
async def test_concurrent_set_quantity_and_remove_never_resurrect(make, deps, catalog) -> None:
    service, who, mug, hat = deps.service, make(), catalog.add(), catalog.add()
    await add(service, who, hat.pricing_id)
    line = (await add(service, who, mug.pricing_id)).lines[-1].line_id
    actions = [
        service.set_line_quantity(principal=who, line_id=line, quantity=7, locale=None)
        for _ in range(20)
    ]
    actions.insert(10, service.remove_line_from_cart(principal=who, line_id=line, locale=None))
    await asyncio.gather(*(attempt(a) for a in actions))
    summary = await service.get_cart_summarized(principal=who, locale=None)
    assert [x.pricing_id for x in summary.lines] == [hat.pricing_id]


async def test_two_concurrent_merges_merge_once(deps: CartDeps, catalog, monkeypatch) -> None:
    service, mug, cap = deps.service, catalog.add(), catalog.add()
    for forced in (False, True):
        anon, usr = anonymous(), user()
        assert anon.anonymous_id and usr.user_id
        await add(service, usr, mug.pricing_id, 1)
        await add(service, anon, mug.pricing_id, 2)
        await add(service, anon, cap.pricing_id, 1)
        if forced:  # both pass the early check: only the unique merge record stands between them

            async def not_yet(anonymous_id: str) -> bool:
                return False

            monkeypatch.setattr(service.users, "merge_recorded", not_yet)
        results = await asyncio.gather(
            *(
                service.anonymous_to_user(anonymous_id=anon.anonymous_id, user_id=usr.user_id)
                for _ in range(2)
            )
        )
        assert sorted(r.merged for r in results) == [False, True]
        summary = await service.get_cart_summarized(principal=usr, locale=None)
        assert [(x.pricing_id, x.quantity) for x in summary.lines] == [
            (mug.pricing_id, 3),
            (cap.pricing_id, 1),
        ]
        assert (await service.get_cart_summarized(principal=anon, locale=None)).lines == []
        identity = [
            e
            for e in await published(deps, "identity.anonymous.merged.v1")
            if e.payload["anonymous_id"] == anon.anonymous_id
        ]
        assert len(identity) == 1
        merged = [
            e
            for e in await published(deps, "cart.cart.merged.v1")
            if e.payload["anonymous_id"] == anon.anonymous_id
        ]
        assert len(merged) == 1


@pytest.mark.parametrize("make", PRINCIPALS)
async def test_racing_checkouts_return_the_same_order_id(make, deps: CartDeps, catalog) -> None:
    service, who, mug = deps.service, make(), catalog.add()
    cart = await add(service, who, mug.pricing_id, 2)
    order_ids = [str(uuid.uuid4()) for _ in range(6)]
    results = await asyncio.gather(
        *(service.checkout(principal=who, order_id=order_id) for order_id in order_ids)
    )
    assert len({r.order_id for r in results}) == 1
    assert results[0].order_id in order_ids
    assert {r.cart_id for r in results} == {cart.cart_id}
    events = [
        e
        for e in await published(deps, "cart.cart.checked_out.v1")
        if e.payload["cart_id"] == cart.cart_id
    ]
    assert len(events) == 1
    assert (await add(service, who, mug.pricing_id)).cart_id != cart.cart_id


async def test_a_checkout_inside_anothers_seal_to_commit_window_gets_the_same_order(
    deps: CartDeps, catalog, monkeypatch
) -> None:
    """Forces the window: B finds no sealed cart, A seals it, B finds no open cart, A commits."""
    service, who, mug = deps.service, anonymous(), catalog.add()
    cart = await add(service, who, mug.pricing_id)
    b_looked, a_sealed, b_done = asyncio.Event(), asyncio.Event(), asyncio.Event()
    get, store_frozen = service.anonymous.get, service.users.store_frozen

    async def get_once_a_sealed(owner):
        if not b_looked.is_set():  # B, after it found no sealed cart: A seals now
            b_looked.set()
            await a_sealed.wait()
        return await get(owner)

    async def store_once_b_is_done(session, frozen):
        if not a_sealed.is_set():  # A, sealed in Redis and not yet committed to SQL
            a_sealed.set()
            await b_done.wait()
        return await store_frozen(session, frozen)

    monkeypatch.setattr(service.anonymous, "get", get_once_a_sealed)
    monkeypatch.setattr(service.users, "store_frozen", store_once_b_is_done)

    async def checkout_b():
        try:
            return await attempt(service.checkout(principal=who, order_id=str(uuid.uuid4())))
        finally:
            b_done.set()

    b = asyncio.create_task(checkout_b())
    await b_looked.wait()
    a = await service.checkout(principal=who, order_id=str(uuid.uuid4()))
    second = await b
    assert not isinstance(second, str), second
    assert (second.order_id, second.cart_id) == (a.order_id, cart.cart_id)
    events = [
        e
        for e in await published(deps, "cart.cart.checked_out.v1")
        if e.payload["cart_id"] == cart.cart_id
    ]
    assert len(events) == 1


async def test_shoppers_never_see_each_others_carts(deps: CartDeps, catalog) -> None:
    shoppers = [anonymous(), anonymous(), user(), user()]
    prices = [catalog.add() for _ in shoppers]
    await asyncio.gather(
        *(
            add(deps.service, who, price.pricing_id, n)
            for n, (who, price) in enumerate(zip(shoppers, prices, strict=True), 1)
        )
    )
    for n, (who, price) in enumerate(zip(shoppers, prices, strict=True), 1):
        summary = await deps.service.get_cart_summarized(principal=who, locale=None)
        assert [(x.pricing_id, x.quantity) for x in summary.lines] == [(price.pricing_id, n)]
