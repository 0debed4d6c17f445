"""CartService on SQLite and the in-process Redis, with a fake catalog."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from libs.contracts.common import Principal
from libs.contracts.envelope import Envelope
from libs.contracts.events import AnonymousMerged, OrderCreated, OrderPaid
from libs.runtime.problems import ProblemError
from services.cart.bootstrap import CartDeps
from services.cart.service import CartService
from services.cart.tables import carts
from tests.unit.cart.builders import anonymous, published, user
from tests.unit.cart.fakes import FakeCatalog

PRINCIPALS = [anonymous, user]


def code_of(error: pytest.ExceptionInfo[ProblemError]) -> tuple[int, str]:
    return error.value.status, error.value.code


async def add(
    service: CartService,
    who: Principal,
    pricing_id: str,
    quantity: int = 1,
    locale: str | None = None,
):
    return await service.add_to_cart(
        principal=who, pricing_id=pricing_id, quantity=quantity, locale=locale
    )


# --- lines -----------------------------------------------------------------------------------


@pytest.mark.parametrize("make", PRINCIPALS)
async def test_the_same_price_adds_up_on_one_line(make, service, catalog: FakeCatalog) -> None:
    who, mug = make(), catalog.add(1290)
    first = await add(service, who, mug.pricing_id, 2)
    second = await add(service, who, mug.pricing_id, 3)
    assert [(x.pricing_id, x.quantity) for x in second.lines] == [(mug.pricing_id, 5)]
    assert second.lines[0].line_id == first.lines[0].line_id
    assert second.cart_id == first.cart_id
    assert (second.subtotal, second.total, second.item_count) == (6450, 6450, 5)


@pytest.mark.parametrize("make", PRINCIPALS)
async def test_quantity_above_the_maximum_is_refused(make, service, catalog) -> None:
    who, mug = make(), catalog.add()
    with pytest.raises(ProblemError) as error:
        await add(service, who, mug.pricing_id, 100)
    assert code_of(error) == (422, "quantity_exceeds_maximum")
    await add(service, who, mug.pricing_id, 98)
    with pytest.raises(ProblemError) as error:
        await add(service, who, mug.pricing_id, 2)
    assert code_of(error) == (422, "quantity_exceeds_maximum")
    assert error.value.extra == {"maximum": 99, "current": 98}
    summary = await service.get_cart_summarized(principal=who, locale=None)
    assert summary.lines[0].quantity == 98


@pytest.mark.parametrize("make", PRINCIPALS)
async def test_unknown_and_inactive_prices_cannot_be_added(make, service, catalog) -> None:
    who, old = make(), catalog.add(active=False)
    with pytest.raises(ProblemError) as error:
        await add(service, who, "no-such-price")
    assert code_of(error) == (422, "unknown_pricing")
    assert error.value.errors and error.value.errors[0].field == "pricing_id"
    with pytest.raises(ProblemError) as error:
        await add(service, who, old.pricing_id)
    assert code_of(error) == (422, "pricing_inactive")
    assert (await service.get_cart_summarized(principal=who, locale=None)).lines == []


@pytest.mark.parametrize("make", PRINCIPALS)
async def test_a_cart_holds_one_currency(make, service, catalog) -> None:
    who, eur, usd = make(), catalog.add(currency="EUR"), catalog.add(currency="USD")
    cart = await add(service, who, eur.pricing_id)
    with pytest.raises(ProblemError) as error:
        await add(service, who, usd.pricing_id)
    assert code_of(error) == (409, "currency_mismatch")
    assert "EUR" in str(error.value.detail) and "USD" in str(error.value.detail)
    # Once empty, the cart takes any currency.
    cart = await service.remove_line_from_cart(
        principal=who, line_id=cart.lines[0].line_id, locale=None
    )
    assert cart.currency is None
    cart = await add(service, who, usd.pricing_id)
    assert cart.currency == "USD"


@pytest.mark.parametrize("make", PRINCIPALS)
async def test_set_quantity_and_remove(make, service, catalog) -> None:
    who, a, b = make(), catalog.add(100), catalog.add(200)
    await add(service, who, a.pricing_id)
    cart = await add(service, who, b.pricing_id)
    line_a, line_b = cart.lines
    cart = await service.set_line_quantity(
        principal=who, line_id=line_a.line_id, quantity=7, locale=None
    )
    assert [x.quantity for x in cart.lines] == [7, 1]
    with pytest.raises(ProblemError) as error:
        await service.set_line_quantity(
            principal=who, line_id=line_a.line_id, quantity=100, locale=None
        )
    assert code_of(error) == (422, "quantity_exceeds_maximum")
    cart = await service.remove_line_from_cart(principal=who, line_id=line_a.line_id, locale=None)
    assert [x.line_id for x in cart.lines] == [line_b.line_id]
    # A removed line is gone for good: neither set nor removed again, never re-created.
    for action in (
        service.set_line_quantity(principal=who, line_id=line_a.line_id, quantity=2, locale=None),
        service.remove_line_from_cart(principal=who, line_id=line_a.line_id, locale=None),
    ):
        with pytest.raises(ProblemError) as error:
            await action
        assert code_of(error) == (404, "line_not_found")
    # Adding the price again starts a new line, with a new id.
    cart = await add(service, who, a.pricing_id)
    assert cart.lines[-1].pricing_id == a.pricing_id
    assert cart.lines[-1].line_id != line_a.line_id


async def test_a_line_of_nobodys_cart_is_not_found(service, catalog) -> None:
    with pytest.raises(ProblemError) as error:
        await service.set_line_quantity(principal=user(), line_id="x", quantity=1, locale=None)
    assert code_of(error) == (404, "line_not_found")


async def test_no_principal_is_refused(service) -> None:
    with pytest.raises(ProblemError) as error:
        await service.get_cart_summarized(principal=Principal(), locale=None)
    assert code_of(error) == (401, "principal_required")


@pytest.mark.parametrize("make", PRINCIPALS)
async def test_concurrent_adds_are_all_counted(make, service, catalog) -> None:
    who, mug = make(), catalog.add()
    await asyncio.gather(*(add(service, who, mug.pricing_id) for _ in range(30)))
    summary = await service.get_cart_summarized(principal=who, locale=None)
    assert [x.quantity for x in summary.lines] == [30]


async def test_carts_are_isolated(service, catalog) -> None:
    people = [anonymous(), anonymous(), user(), user()]
    prices = [catalog.add() for _ in people]
    for n, (who, price) in enumerate(zip(people, prices, strict=True), 1):
        await add(service, who, price.pricing_id, n)
    for n, (who, price) in enumerate(zip(people, prices, strict=True), 1):
        summary = await service.get_cart_summarized(principal=who, locale=None)
        assert [(x.pricing_id, x.quantity) for x in summary.lines] == [(price.pricing_id, n)]
    # A line id of another shopper's cart is not found in mine.
    other = (await service.get_cart_summarized(principal=people[1], locale=None)).lines[0]
    with pytest.raises(ProblemError) as error:
        await service.remove_line_from_cart(principal=people[0], line_id=other.line_id, locale=None)
    assert code_of(error) == (404, "line_not_found")


async def test_a_logged_in_principal_uses_the_user_cart(service, catalog) -> None:
    both = Principal(user_id=f"u-{uuid.uuid4().hex}", anonymous_id=f"a-{uuid.uuid4().hex}")
    mug = catalog.add()
    await add(service, both, mug.pricing_id)
    only_user = Principal(user_id=both.user_id)
    only_anonymous = Principal(anonymous_id=both.anonymous_id)
    assert len((await service.get_cart_summarized(principal=only_user, locale=None)).lines) == 1
    assert (await service.get_cart_summarized(principal=only_anonymous, locale=None)).lines == []


# --- summary and prices ----------------------------------------------------------------------


@pytest.mark.parametrize("make", PRINCIPALS)
async def test_summary_names_in_locale_and_lines_in_order_of_addition(
    make, service, catalog
) -> None:
    who = make()
    cup = catalog.add(300, names={"en": "Cup", "de": "Tasse"})
    plan = catalog.add(900, names={"en": "Plan", "de": "Abo"}, interval="month")
    await add(service, who, plan.pricing_id)
    await add(service, who, cup.pricing_id, 2)
    await add(service, who, plan.pricing_id)
    summary = await service.get_cart_summarized(principal=who, locale="de")
    assert [(x.name, x.quantity, x.unit_amount, x.subtotal) for x in summary.lines] == [
        ("Abo", 2, 900, 1800),
        ("Tasse", 2, 300, 600),
    ]
    assert summary.lines[0].interval == "month"
    assert (summary.total, summary.item_count, summary.starts_subscription) == (2400, 4, True)
    english = await service.get_cart_summarized(principal=who, locale="en")
    assert [x.name for x in english.lines] == ["Plan", "Cup"]


async def test_a_summary_costs_at_most_one_catalog_call(service, catalog) -> None:
    who = user()
    prices = [catalog.add(100 + n) for n in range(12)]
    for price in prices:
        await add(service, who, price.pricing_id)
    service.prices._cache = None  # every summary goes to catalog
    catalog.calls.clear()
    summary = await service.get_cart_summarized(principal=who, locale="en")
    assert len(summary.lines) == 12
    assert len(catalog.calls) == 1 and len(catalog.calls[0]) == 12


async def test_a_warm_cache_answers_without_catalog(service, catalog) -> None:
    who = anonymous()
    prices = [catalog.add() for _ in range(5)]
    for price in prices:
        await add(service, who, price.pricing_id)
    catalog.calls.clear()
    await service.get_cart_summarized(principal=who, locale=None)
    await service.get_cart_summarized(principal=who, locale=None)
    assert catalog.calls == []


async def test_an_add_with_a_cold_cache_costs_one_catalog_call(service, catalog) -> None:
    who = user()
    old = [catalog.add() for _ in range(3)]
    for price in old:
        await add(service, who, price.pricing_id)
    new = catalog.add()
    catalog.calls.clear()
    await add(service, who, new.pricing_id, locale="fr")  # nothing cached in French yet
    assert len(catalog.calls) == 1


async def test_a_price_change_event_refreshes_the_cache(service, catalog) -> None:
    who, mug = anonymous(), catalog.add(1000, names={"en": "Mug"})
    await add(service, who, mug.pricing_id)
    mug.unit_amount, mug.names = 1200, {"en": "Big mug"}
    cached = await service.get_cart_summarized(principal=who, locale=None)
    assert (cached.lines[0].unit_amount, cached.lines[0].name) == (1000, "Mug")
    await service.forget_pricing(pricing_id=mug.pricing_id)
    fresh = await service.get_cart_summarized(principal=who, locale=None)
    assert (fresh.lines[0].unit_amount, fresh.total) == (1200, 1200)


async def test_a_product_change_event_refreshes_its_prices(service, catalog) -> None:
    who = user()
    a = catalog.add(100, product_key="shirt", names={"en": "Shirt"})
    b = catalog.add(200, product_key="shirt", names={"en": "Shirt"})
    await add(service, who, a.pricing_id)
    await add(service, who, b.pricing_id)
    a.active = b.active = False
    a.names = b.names = {"en": "Old shirt"}
    await service.forget_product(product_key="shirt")
    summary = await service.get_cart_summarized(principal=who, locale=None)
    assert [(x.name, x.available) for x in summary.lines] == [("Old shirt", False)] * 2
    assert summary.total == 0


async def test_a_lookup_overtaken_by_an_event_is_not_cached(service, catalog) -> None:
    mug = catalog.add(1000)
    cache = service.prices._cache
    assert cache is not None
    _, epoch = await cache.get_many([mug.pricing_id], None)
    stale = (await catalog.lookup([mug.pricing_id], None)).items
    await cache.forget_pricing(mug.pricing_id)  # the event arrives while the lookup is out
    assert not await cache.put_many(stale, None, epoch)
    found, _ = await cache.get_many([mug.pricing_id], None)
    assert found == {}


async def test_the_price_events_reach_the_cache_through_the_bus(deps: CartDeps, catalog) -> None:
    from libs.contracts.events import PricingChanged

    who, mug = anonymous(), catalog.add(1000)
    await add(deps.service, who, mug.pricing_id)
    mug.unit_amount = 1500
    event = PricingChanged(
        pricing_id=mug.pricing_id, product_key=mug.product_key, unit_amount=1500, currency="EUR"
    )
    await deps.runtime.bus.publish(Envelope.wrap(event, producer="catalog"))
    await deps.runtime.bus.idle()  # type: ignore[attr-defined]
    summary = await deps.service.get_cart_summarized(principal=who, locale=None)
    assert summary.lines[0].unit_amount == 1500


# --- merge -----------------------------------------------------------------------------------


async def merge(service: CartService, anon: Principal, usr: Principal):
    assert anon.anonymous_id and usr.user_id
    return await service.anonymous_to_user(anonymous_id=anon.anonymous_id, user_id=usr.user_id)


async def test_merge_moves_lines_adds_up_capped_and_deletes_the_anonymous_cart(
    deps, catalog
) -> None:
    service = deps.service
    anon, usr = anonymous(), user()
    a, b, c = catalog.add(100), catalog.add(200), catalog.add(300)
    await add(service, usr, a.pricing_id, 90)
    await add(service, usr, b.pricing_id, 1)
    await add(service, anon, a.pricing_id, 20)
    await add(service, anon, c.pricing_id, 2)
    result = await merge(service, anon, usr)
    assert result.merged
    assert [(x.pricing_id, x.quantity) for x in result.cart.lines] == [
        (a.pricing_id, 99),
        (b.pricing_id, 1),
        (c.pricing_id, 2),
    ]
    assert [(d.pricing_id, d.quantity, d.reason) for d in result.dropped] == [
        (a.pricing_id, 11, "quantity_capped")
    ]
    assert (await service.get_cart_summarized(principal=anon, locale=None)).lines == []
    assert await service.get_cart_summarized(principal=usr, locale=None) == result.cart
    [merged] = await published(deps, "cart.cart.merged.v1")
    assert [(x["pricing_id"], x["quantity"]) for x in merged.payload["lines"]] == [
        (a.pricing_id, 9),
        (c.pricing_id, 2),
    ]
    [identity] = await published(deps, "identity.anonymous.merged.v1")
    assert identity.payload == {"anonymous_id": anon.anonymous_id, "user_id": usr.user_id}


async def test_merging_again_changes_nothing_and_publishes_nothing(deps, catalog) -> None:
    service, anon, usr, mug = deps.service, anonymous(), user(), catalog.add()
    await add(service, anon, mug.pricing_id, 2)
    await merge(service, anon, usr)
    before = await published(deps)
    # The shopper keeps using the old anonymous id; a second merge leaves both carts alone.
    await add(service, anon, mug.pricing_id, 1)
    again = await merge(service, anon, usr)
    assert not again.merged
    assert [x.quantity for x in again.cart.lines] == [2]
    assert [
        x.quantity for x in (await service.get_cart_summarized(principal=anon, locale=None)).lines
    ] == [1]
    assert await published(deps) == before


async def test_first_merge_of_an_empty_cart_still_publishes_the_identity_merge(deps) -> None:
    result = await merge(deps.service, anonymous(), user())
    assert result.merged and result.cart.lines == []
    assert len(await published(deps, "identity.anonymous.merged.v1")) == 1
    assert await published(deps, "cart.cart.merged.v1") == []


async def test_merge_currency_conflict_keeps_the_users_cart(deps, catalog) -> None:
    service, anon, usr = deps.service, anonymous(), user()
    eur, usd = catalog.add(currency="EUR"), catalog.add(currency="USD")
    await add(service, usr, eur.pricing_id)
    await add(service, anon, usd.pricing_id, 3)
    result = await merge(service, anon, usr)
    assert result.merged and result.cart.currency == "EUR"
    assert [x.pricing_id for x in result.cart.lines] == [eur.pricing_id]
    assert [(d.pricing_id, d.quantity, d.reason) for d in result.dropped] == [
        (usd.pricing_id, 3, "currency_mismatch")
    ]
    assert await published(deps, "cart.cart.merged.v1") == []
    assert len(await published(deps, "identity.anonymous.merged.v1")) == 1


async def test_an_empty_user_cart_takes_the_anonymous_cart(deps, catalog) -> None:
    service, anon, usr, usd = deps.service, anonymous(), user(), catalog.add(currency="USD")
    await add(service, anon, usd.pricing_id, 3)
    result = await merge(service, anon, usr)
    assert result.cart.currency == "USD"
    assert [(x.pricing_id, x.quantity) for x in result.cart.lines] == [(usd.pricing_id, 3)]


async def test_a_failed_merge_puts_the_anonymous_cart_back(deps, catalog, monkeypatch) -> None:
    service, anon, usr, mug = deps.service, anonymous(), user(), catalog.add()
    await add(service, anon, mug.pricing_id, 4)

    async def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(service.users, "reown_frozen", broken)
    with pytest.raises(RuntimeError):
        await merge(service, anon, usr)
    assert [
        x.quantity for x in (await service.get_cart_summarized(principal=anon, locale=None)).lines
    ] == [4]
    assert await published(deps) == []
    monkeypatch.undo()
    assert (await merge(service, anon, usr)).merged
    assert [
        x.quantity for x in (await service.get_cart_summarized(principal=usr, locale=None)).lines
    ] == [4]


async def test_concurrent_merges_merge_once(deps, catalog, monkeypatch) -> None:
    service, anon, usr, mug = deps.service, anonymous(), user(), catalog.add()
    await add(service, anon, mug.pricing_id, 3)

    async def not_yet(anonymous_id: str) -> bool:
        return False  # every racer passed the early check before any of them committed

    monkeypatch.setattr(service.users, "merge_recorded", not_yet)
    results = await asyncio.gather(*(merge(service, anon, usr) for _ in range(4)))
    assert sorted(r.merged for r in results) == [False, False, False, True]
    summary = await service.get_cart_summarized(principal=usr, locale=None)
    assert [x.quantity for x in summary.lines] == [3]
    assert len(await published(deps, AnonymousMerged.event_type)) == 1


# --- checkout --------------------------------------------------------------------------------


async def checkout(service: CartService, who: Principal, order_id: str | None = None):
    return await service.checkout(principal=who, order_id=order_id or str(uuid.uuid4()))


async def stored_carts(deps: CartDeps, who: Principal):
    owner = who.owner
    assert owner is not None
    query = select(carts).where(carts.c.owner_id == owner.id)
    async with deps.runtime.sessions() as session:
        return (await session.execute(query)).mappings().all()


@pytest.mark.parametrize("make", PRINCIPALS)
async def test_checkout_freezes_the_cart_durably_and_the_next_add_starts_a_new_cart(
    make, deps, catalog
) -> None:
    service, who, mug = deps.service, make(), catalog.add()
    cart = await add(service, who, mug.pricing_id, 2)
    order_id = str(uuid.uuid4())
    frozen = await checkout(service, who, order_id)
    assert (frozen.cart_id, frozen.order_id, frozen.owner, frozen.currency) == (
        cart.cart_id,
        order_id,
        who.owner,
        "EUR",
    )
    assert [(x.pricing_id, x.quantity) for x in frozen.lines] == [(mug.pricing_id, 2)]
    [row] = await stored_carts(deps, who)
    assert (row["external_id"], row["order_id"]) == (cart.cart_id, order_id)
    [event] = await published(deps, "cart.cart.checked_out.v1")
    assert event.payload["order_id"] == order_id
    assert (await service.get_cart_summarized(principal=who, locale=None)).lines == []
    again = await add(service, who, mug.pricing_id)
    assert again.cart_id != cart.cart_id and [x.quantity for x in again.lines] == [1]


@pytest.mark.parametrize("make", PRINCIPALS)
async def test_a_retried_checkout_gets_the_frozen_cart_until_its_order_is_paid(
    make, deps, catalog
) -> None:
    service, who, mug = deps.service, make(), catalog.add()
    await add(service, who, mug.pricing_id)
    first = await checkout(service, who)
    assert await checkout(service, who) == first
    assert await checkout(service, who, first.order_id) == first
    owner = who.owner
    assert owner is not None
    facts = {"order_id": first.order_id, "number": "1001", "owner": owner, "currency": "EUR"}
    bus = deps.runtime.bus
    # The order was created: a retry still gets the same cart (and so the same order).
    await bus.publish(Envelope.wrap(OrderCreated(**facts, total=1000), producer="orders"))
    await bus.idle()
    assert await checkout(service, who) == first
    # It was paid: checking out the empty cart is now an error.
    paid = OrderPaid(**facts, total=1000, paid_at=datetime.now(UTC))
    await bus.publish(Envelope.wrap(paid, producer="orders"))
    await bus.idle()
    with pytest.raises(ProblemError) as error:
        await checkout(service, who)
    assert code_of(error) == (422, "cart_empty")
    assert len(await published(deps, "cart.cart.checked_out.v1")) == 1
    [row] = await stored_carts(deps, who)
    assert row["order_confirmed_at"] is not None and row["order_paid_at"] is not None


async def test_an_empty_cart_cannot_be_checked_out(service) -> None:
    with pytest.raises(ProblemError) as error:
        await checkout(service, anonymous())
    assert code_of(error) == (422, "cart_empty")


async def test_an_order_id_of_another_owner_is_a_conflict(service, catalog) -> None:
    mug, someone, other = catalog.add(), user(), user()
    await add(service, someone, mug.pricing_id)
    frozen = await checkout(service, someone)
    await add(service, other, mug.pricing_id)
    with pytest.raises(ProblemError) as error:
        await checkout(service, other, frozen.order_id)
    assert code_of(error) == (409, "order_id_in_use")


@pytest.mark.parametrize("make", PRINCIPALS)
async def test_a_cart_with_a_line_no_longer_sold_is_not_frozen(make, service, catalog) -> None:
    who, mug, hat = make(), catalog.add(), catalog.add()
    await add(service, who, mug.pricing_id)
    await add(service, who, hat.pricing_id)
    hat.active = False
    await service.forget_pricing(pricing_id=hat.pricing_id)
    with pytest.raises(ProblemError) as error:
        await checkout(service, who)
    assert code_of(error) == (422, "cart_has_unavailable_lines")
    assert len((await service.get_cart_summarized(principal=who, locale=None)).lines) == 2


@pytest.mark.parametrize("make", PRINCIPALS)
async def test_racing_checkouts_get_the_first_order_id(make, deps, catalog) -> None:
    service, who, mug = deps.service, make(), catalog.add()
    await add(service, who, mug.pricing_id)
    results = await asyncio.gather(*(checkout(service, who) for _ in range(5)))
    assert len({r.order_id for r in results}) == 1
    assert len({r.cart_id for r in results}) == 1
    assert len(await published(deps, "cart.cart.checked_out.v1")) == 1


async def test_an_anonymous_checkout_stopped_halfway_is_completed_by_the_next(
    deps, catalog
) -> None:
    service, who, mug = deps.service, anonymous(), catalog.add()
    cart = await add(service, who, mug.pricing_id)
    owner = who.owner
    assert owner is not None
    # A checkout froze the cart in Redis, then its process died before storing it in SQL.
    await service.anonymous.seal(owner, order_id="first-order")
    frozen = await checkout(service, who, "second-order")
    assert (frozen.cart_id, frozen.order_id) == (cart.cart_id, "first-order")
    assert [r["order_id"] for r in await stored_carts(deps, who)] == ["first-order"]


async def test_merge_gives_the_user_the_anonymous_checked_out_carts(deps, catalog) -> None:
    service, anon, usr, mug = deps.service, anonymous(), user(), catalog.add()
    await add(service, anon, mug.pricing_id)
    frozen = await checkout(service, anon)
    await merge(service, anon, usr)
    # The order was not created yet: the user's retry completes it.
    again = await checkout(service, usr)
    assert (again.cart_id, again.order_id, again.owner) == (
        frozen.cart_id,
        frozen.order_id,
        usr.owner,
    )
