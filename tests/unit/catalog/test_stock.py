"""Stock: the rules (pure), and reservations on SQLite — held, released, sold, backordered,
all lines or none, idempotent per order, an event per change. The race tests run again on
PostgreSQL in tests/integration/catalog/test_stock_postgres.py."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from libs.contracts.catalog import PriceIn, ProductIn, StockLineIn
from libs.runtime.problems import ProblemError
from services.catalog.bootstrap import CatalogDeps
from services.catalog.stock import Level, plan_sale, shortages
from services.catalog.store import now
from services.catalog.tables import outbox, stock_reservations

# --------------------------------------------------------------------------------- the rules


def test_available_is_on_hand_minus_reserved_never_below_zero_and_none_untracked() -> None:
    assert Level("p", "k", True, 10, 3).available == 7
    assert Level("p", "k", True, 2, 5).available == 0  # a backorder took on hand below reserved
    assert Level("p", "k", False, 0, 0).available is None


def test_a_held_line_is_sold_from_its_hold() -> None:
    sale = plan_sale("held", 3, free=0)
    assert (sale.reserved, sale.on_hand, sale.backordered) == (3, 3, 0)


def test_a_released_line_takes_what_is_free_and_backorders_the_rest() -> None:
    assert plan_sale("released", 3, free=5).backordered == 0
    assert plan_sale("released", 3, free=1).backordered == 2
    assert plan_sale("released", 3, free=-4).backordered == 3
    sale = plan_sale("released", 3, free=1)
    assert (sale.reserved, sale.on_hand) == (0, 3)  # sold anyway: never refused


def test_a_sold_line_changes_nothing_again() -> None:
    sale = plan_sale("sold", 3, free=10)
    assert (sale.reserved, sale.on_hand, sale.backordered) == (0, 0, 0)


def test_shortages_name_only_tracked_products_with_too_little() -> None:
    levels = {"a": Level("a", "a", True, 2, 0), "b": Level("b", "b", False, 0, 0)}
    assert shortages({"a": 3, "b": 100, "c": 1}, levels) == {"a": 2}
    assert shortages({"a": 2}, levels) == {}


# --------------------------------------------------------------------------------- helpers


async def product(catalog: CatalogDeps, on_hand: int | None = None) -> tuple[str, str]:
    """A new product (key, pricing id); tracked with `on_hand` units when given."""
    key = f"p-{uuid.uuid4().hex[:10]}"
    created = await catalog.service.create_product(
        product=ProductIn(
            key=key,
            translations={"en": {"name": key}},
            prices=[PriceIn(unit_amount=100, currency="EUR")],
            shippable=True,
        )
    )
    if on_hand is not None:
        await catalog.service.stock.set_on_hand(key=key, on_hand=on_hand, actor="ops@example")
    return key, created.prices[0].id


def line(pricing_id: str, quantity: int = 1) -> StockLineIn:
    return StockLineIn(pricing_id=pricing_id, quantity=quantity)


async def stock_events(catalog: CatalogDeps, key: str) -> list[dict[str, object]]:
    async with catalog.runtime.transaction() as session:
        rows = (
            await session.execute(
                select(outbox.c.envelope)
                .where(outbox.c.type == "catalog.stock.changed.v1")
                .order_by(outbox.c.id)
            )
        ).all()
    payloads = [row.envelope["payload"] for row in rows]
    return [p for p in payloads if p["product_key"] == key]


async def available(catalog: CatalogDeps, key: str) -> int | None:
    return (await catalog.service.stock.get_stock(key=key)).available


def order() -> str:
    return str(uuid.uuid4())


# --------------------------------------------------------------------------------- the verbs


async def test_untracked_products_reserve_nothing_and_show_null(catalog: CatalogDeps) -> None:
    key, pricing = await product(catalog)
    held = await catalog.service.stock.reserve_stock(order_id=order(), lines=[line(pricing, 99)])
    assert held.status == "none" and held.lines == []
    shown = await catalog.service.get_product(key=key)
    assert shown.stock.tracked is False and shown.stock.available is None


async def test_the_product_shows_what_is_available(catalog: CatalogDeps) -> None:
    key, pricing = await product(catalog, on_hand=5)
    await catalog.service.stock.reserve_stock(order_id=order(), lines=[line(pricing, 2)])
    shown = await catalog.service.get_product(key=key)
    assert (shown.stock.tracked, shown.stock.available) == (True, 3)
    page = await catalog.service.list_products(limit=100)
    assert next(p for p in page.items if p.key == key).stock.available == 3


async def test_setting_on_hand_publishes_the_change_with_its_actor(catalog: CatalogDeps) -> None:
    key, _ = await product(catalog, on_hand=7)
    [event] = await stock_events(catalog, key)
    assert event["reason"] == "set" and event["actor"] == "ops@example"
    assert (event["on_hand"], event["reserved"], event["available"]) == (7, 0, 7)


async def test_reserve_holds_and_a_retry_answers_the_same(catalog: CatalogDeps) -> None:
    key, pricing = await product(catalog, on_hand=3)
    oid = order()
    first = await catalog.service.stock.reserve_stock(order_id=oid, lines=[line(pricing, 2)])
    again = await catalog.service.stock.reserve_stock(order_id=oid, lines=[line(pricing, 2)])
    assert first.status == again.status == "held"
    assert first.lines == again.lines
    assert await available(catalog, key) == 1
    reasons = [e["reason"] for e in await stock_events(catalog, key)]
    assert reasons == ["set", "reserved"]  # the retry changed nothing


async def test_out_of_stock_names_the_products_and_reserves_nothing(catalog: CatalogDeps) -> None:
    plenty, plenty_price = await product(catalog, on_hand=10)
    scarce, scarce_price = await product(catalog, on_hand=1)
    with pytest.raises(ProblemError) as refused:
        await catalog.service.stock.reserve_stock(
            order_id=order(), lines=[line(plenty_price, 2), line(scarce_price, 2)]
        )
    assert refused.value.status == 409 and refused.value.code == "out_of_stock"
    assert refused.value.extra["products"] == [
        {"product_key": scarce, "requested": 2, "available": 1}
    ]
    assert scarce in (refused.value.detail or "")
    # All or nothing: the line that fitted was not taken either, and no event went out.
    assert await available(catalog, plenty) == 10
    assert [e["reason"] for e in await stock_events(catalog, plenty)] == ["set"]


async def test_the_same_product_on_two_lines_counts_once(catalog: CatalogDeps) -> None:
    key, pricing = await product(catalog, on_hand=3)
    with pytest.raises(ProblemError):
        await catalog.service.stock.reserve_stock(
            order_id=order(), lines=[line(pricing, 2), StockLineIn(product_key=key, quantity=2)]
        )
    assert await available(catalog, key) == 3


async def test_release_gives_back_once(catalog: CatalogDeps) -> None:
    key, pricing = await product(catalog, on_hand=3)
    oid = order()
    await catalog.service.stock.reserve_stock(order_id=oid, lines=[line(pricing, 2)])
    first = await catalog.service.stock.release_stock(order_id=oid)
    again = await catalog.service.stock.release_stock(order_id=oid)
    assert first.status == again.status == "released"
    assert await available(catalog, key) == 3
    assert [e["reason"] for e in await stock_events(catalog, key)] == [
        "set",
        "reserved",
        "released",
    ]


async def test_an_old_attempts_expiry_leaves_a_pay_agains_hold(catalog: CatalogDeps) -> None:
    key, pricing = await product(catalog, on_hand=3)
    stock = catalog.service.stock
    oid = order()
    await stock.reserve_stock(order_id=oid, lines=[line(pricing, 1)])
    await stock.bind_attempt(order_id=oid, attempt_id="attempt-1")
    # Pay again: the hold is renewed and unbound, then bound to the new attempt.
    await stock.reserve_stock(order_id=oid, lines=[line(pricing, 1)])
    expired_old = await stock.release_stock(order_id=oid, attempt_id="attempt-1")
    assert expired_old.status == "held"
    await stock.bind_attempt(order_id=oid, attempt_id="attempt-2")
    assert (await stock.release_stock(order_id=oid, attempt_id="attempt-1")).status == "held"
    assert (await stock.release_stock(order_id=oid, attempt_id="attempt-2")).status == "released"
    assert await available(catalog, key) == 3


async def test_pay_again_after_a_release_reserves_anew(catalog: CatalogDeps) -> None:
    key, pricing = await product(catalog, on_hand=1)
    stock = catalog.service.stock
    oid = order()
    await stock.reserve_stock(order_id=oid, lines=[line(pricing, 1)])
    await stock.release_stock(order_id=oid)
    assert (await stock.reserve_stock(order_id=oid, lines=[line(pricing, 1)])).status == "held"
    assert await available(catalog, key) == 0
    await stock.release_stock(order_id=oid)
    await stock.reserve_stock(order_id=order(), lines=[line(pricing, 1)])  # someone else
    with pytest.raises(ProblemError) as refused:
        await stock.reserve_stock(order_id=oid, lines=[line(pricing, 1)])
    assert refused.value.code == "out_of_stock"


async def test_commit_sells_a_hold_once(catalog: CatalogDeps) -> None:
    key, pricing = await product(catalog, on_hand=5)
    stock = catalog.service.stock
    oid = order()
    await stock.reserve_stock(order_id=oid, lines=[line(pricing, 2)])
    sold = await stock.commit_stock(order_id=oid)
    again = await stock.commit_stock(order_id=oid)
    assert sold == again
    assert sold.status == "sold" and sold.lines[0].backordered == 0
    level = await stock.get_stock(key=key)
    assert (level.on_hand, level.reserved, level.available) == (3, 0, 3)
    assert [e["reason"] for e in await stock_events(catalog, key)][-1] == "sold"


async def test_a_payment_after_the_release_takes_free_stock(catalog: CatalogDeps) -> None:
    key, pricing = await product(catalog, on_hand=5)
    stock = catalog.service.stock
    oid = order()
    await stock.reserve_stock(order_id=oid, lines=[line(pricing, 2)])
    await stock.release_stock(order_id=oid)
    sold = await stock.commit_stock(order_id=oid)
    assert sold.lines[0].backordered == 0
    assert await available(catalog, key) == 3


async def test_a_payment_after_the_stock_went_is_sold_and_backordered(catalog: CatalogDeps) -> None:
    key, pricing = await product(catalog, on_hand=2)
    stock = catalog.service.stock
    late = order()
    await stock.reserve_stock(order_id=late, lines=[line(pricing, 2)])
    await stock.release_stock(order_id=late)
    await stock.reserve_stock(order_id=order(), lines=[line(pricing, 1)])  # one unit went
    sold = await stock.commit_stock(order_id=late)
    assert sold.status == "sold"
    assert [(x.product_key, x.quantity, x.backordered) for x in sold.lines] == [(key, 2, 1)]
    level = await stock.get_stock(key=key)
    assert (level.on_hand, level.reserved, level.available) == (0, 1, 0)  # never negative
    assert [e["reason"] for e in await stock_events(catalog, key)][-1] == "backordered"


async def test_the_sweep_releases_holds_past_their_deadline(catalog: CatalogDeps) -> None:
    key, pricing = await product(catalog, on_hand=4)
    stock = catalog.service.stock
    stale, fresh = order(), order()
    await stock.reserve_stock(order_id=stale, lines=[line(pricing, 1)])
    await stock.reserve_stock(order_id=fresh, lines=[line(pricing, 1)])
    async with catalog.runtime.transaction() as session:
        await session.execute(
            update(stock_reservations)
            .where(stock_reservations.c.order_id == stale)
            .values(expires_at=now() - timedelta(seconds=1))
        )
    assert await stock.release_expired() == 1
    assert await stock.release_expired() == 0
    assert await available(catalog, key) == 3


async def test_racing_reservations_never_oversell(catalog: CatalogDeps) -> None:
    key, pricing = await product(catalog, on_hand=10)
    stock = catalog.service.stock
    orders = [order() for _ in range(50)]
    results = await asyncio.gather(
        *(stock.reserve_stock(order_id=oid, lines=[line(pricing, 1)]) for oid in orders),
        return_exceptions=True,
    )
    held = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(held) == 10 and all(r.status == "held" for r in held)
    assert len(refused) == 40
    assert all(getattr(r, "code", None) == "out_of_stock" for r in refused), [
        repr(r) for r in refused if getattr(r, "code", None) != "out_of_stock"
    ][:3]
    level = await stock.get_stock(key=key)
    assert (level.on_hand, level.reserved, level.available) == (10, 10, 0)
    await asyncio.gather(*(stock.release_stock(order_id=oid) for oid in orders))
    level = await stock.get_stock(key=key)
    assert (level.reserved, level.available) == (0, 10)


async def test_racing_multi_line_reservations_take_all_lines_or_none(catalog: CatalogDeps) -> None:
    a, a_price = await product(catalog, on_hand=6)
    b, b_price = await product(catalog, on_hand=3)
    stock = catalog.service.stock
    # Half ask a+b, half b+a: the id order of taking keeps them from deadlocking.
    results = await asyncio.gather(
        *(
            stock.reserve_stock(
                order_id=order(),
                lines=[line(a_price), line(b_price)] if i % 2 else [line(b_price), line(a_price)],
            )
            for i in range(12)
        ),
        return_exceptions=True,
    )
    held = [r for r in results if not isinstance(r, BaseException)]
    assert len(held) == 3
    level_a, level_b = await stock.get_stock(key=a), await stock.get_stock(key=b)
    assert (level_a.reserved, level_b.reserved) == (3, 3)  # a's extra units were not kept
    assert (level_a.available, level_b.available) == (3, 0)


async def test_setupproducts_starts_tracking_once_and_never_resets(catalog: CatalogDeps) -> None:
    import json

    from services.catalog.setup import apply_config, load_config

    key = f"p-{uuid.uuid4().hex[:10]}"
    entry = {
        "key": key,
        "translations": {"en": {"name": "Counted"}},
        "prices": [{"unit_amount": 100}],
        "stock": 4,
    }
    config = load_config(json.dumps({"products": [entry]}))
    report = await apply_config(catalog.service, config, currency="EUR")
    assert not report.failed
    assert await available(catalog, key) == 4
    pricing = (await catalog.service.get_product(key=key)).prices[0].id
    await catalog.service.stock.reserve_stock(order_id=order(), lines=[line(pricing, 1)])
    await catalog.service.stock.commit_stock(order_id=(await _held_order(catalog, key)))
    await apply_config(catalog.service, config, currency="EUR")  # a rerun
    level = await catalog.service.stock.get_stock(key=key)
    assert (level.on_hand, level.available) == (3, 3)  # the sale stays sold


async def _held_order(catalog: CatalogDeps, key: str) -> str:
    [event] = [e for e in await stock_events(catalog, key) if e["reason"] == "reserved"]
    return str(event["order_id"])


async def test_expiry_and_cancel_events_release_through_the_bus(catalog: CatalogDeps) -> None:
    from datetime import UTC, datetime

    from libs.contracts.common import Owner
    from libs.contracts.envelope import Envelope
    from libs.contracts.events import OrderCanceled, PaymentExpired

    key, pricing = await product(catalog, on_hand=5)
    stock = catalog.service.stock
    expiring, canceled = order(), order()
    await stock.reserve_stock(order_id=expiring, lines=[line(pricing, 1)])
    await stock.bind_attempt(order_id=expiring, attempt_id="a-new")
    await stock.reserve_stock(order_id=canceled, lines=[line(pricing, 2)])
    bus = catalog.runtime.shared.bus
    old = PaymentExpired(attempt_id="a-old", order_id=expiring)  # an older attempt's expiry
    await bus.publish(Envelope.wrap(old, producer="payments"))
    await bus.idle()
    assert await available(catalog, key) == 2

    await bus.publish(
        Envelope.wrap(PaymentExpired(attempt_id="a-new", order_id=expiring), producer="payments")
    )
    cancel = OrderCanceled(
        order_id=canceled,
        number="2026-000001",
        owner=Owner(kind="user", id="u1"),
        currency="EUR",
        total=200,
        canceled_at=datetime.now(UTC),
        canceled_by="shopper",
    )
    await bus.publish(Envelope.wrap(cancel, producer="orders"))
    await bus.idle()
    assert await available(catalog, key) == 5
