"""CatalogService on SQLite: price rules, events through the outbox, lookups, listing cost."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, select

from libs.contracts.catalog import PriceIn, ProductIn, ProductUpdateIn, TranslationIn
from libs.contracts.common import Owner
from libs.contracts.envelope import Envelope
from libs.contracts.events import CartCheckedOut, CartLineSnapshot, PricingChanged, ProductChanged
from libs.runtime.problems import InvalidInput
from services.catalog.bootstrap import CatalogDeps
from services.catalog.bulk import generate_products
from services.catalog.domain import PricingInactive, ProductExists
from services.catalog.tables import outbox


def new_key() -> str:
    return f"p-{uuid.uuid4().hex[:10]}"


def product_in(key: str | None = None, **changes: object) -> ProductIn:
    data: dict[str, object] = {
        "key": key or new_key(),
        "tax_code": "general",
        "translations": {
            "en": {"name": "Mug", "description": "Stoneware"},
            "de": {"name": "Tasse"},
        },
        "prices": [{"unit_amount": 1290, "currency": "EUR"}],
    }
    data.update(changes)
    return ProductIn.model_validate(data)


async def outbox_events(catalog: CatalogDeps) -> list[Envelope]:
    async with catalog.runtime.sessions() as session:
        rows = (await session.execute(select(outbox.c.envelope).order_by(outbox.c.id))).all()
    return [Envelope.model_validate(row.envelope) for row in rows]


@contextmanager
def counting_queries(catalog: CatalogDeps) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        # The outbox relay polls on the same engine in the background: not the page's cost.
        if statement.lstrip().upper().startswith("SELECT") and "FROM outbox" not in statement:
            statements.append(statement)

    engine = catalog.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


# --------------------------------------------------------------------------------- writes


async def test_creating_a_product_records_its_events_in_the_same_transaction(
    catalog: CatalogDeps,
) -> None:
    created = await catalog.service.create_product(product=product_in())

    events = [(e.type, e.payload) for e in await outbox_events(catalog)]
    pricing = created.prices[0]
    assert (PricingChanged.event_type, {**events[0][1]}) == (
        "catalog.pricing.changed.v1",
        {
            "pricing_id": pricing.id,
            "product_key": created.key,
            "unit_amount": 1290,
            "currency": "EUR",
            "interval": None,
            "interval_count": 1,
            "active": True,
            "replaced_by": None,
        },
    )
    assert events[1][0] == ProductChanged.event_type
    assert events[1][1]["names"] == {"de": "Tasse", "en": "Mug"}
    assert events[1][1]["sellable"] is True
    assert created.sellable and created.translations["de"].name == "Tasse"


async def test_duplicate_key_is_a_conflict_and_creates_nothing(catalog: CatalogDeps) -> None:
    key = new_key()
    await catalog.service.create_product(product=product_in(key))
    before = len(await outbox_events(catalog))
    with pytest.raises(ProductExists) as caught:
        await catalog.service.create_product(product=product_in(key, prices=[]))
    assert caught.value.status == 409
    assert caught.value.errors and caught.value.errors[0].field == "key"
    assert len(await outbox_events(catalog)) == before


async def test_a_bad_price_in_a_new_product_leaves_nothing_behind(catalog: CatalogDeps) -> None:
    key = new_key()
    bad = product_in(
        key,
        prices=[
            {"unit_amount": 100, "currency": "EUR"},
            {"unit_amount": 100, "currency": "XYZ"},
        ],
    )
    with pytest.raises(InvalidInput) as caught:
        await catalog.service.create_product(product=bad)
    assert caught.value.errors and caught.value.errors[0].field == "prices.1.currency"
    page = await catalog.service.list_products(active=False)
    assert key not in [p.key for p in page.items]


async def test_an_unsold_price_is_edited_in_place(catalog: CatalogDeps) -> None:
    created = await catalog.service.create_product(product=product_in())
    old = created.prices[0]

    changed = await catalog.service.change_price(
        key=created.key, pricing_id=old.id, price=PriceIn(unit_amount=1490, currency="EUR")
    )

    assert changed.id == old.id and changed.unit_amount == 1490
    last = (await outbox_events(catalog))[-1]
    assert last.type == PricingChanged.event_type
    assert (last.payload["pricing_id"], last.payload["unit_amount"]) == (old.id, 1490)


async def test_a_sold_price_is_replaced_and_the_old_one_keeps_what_was_sold(
    catalog: CatalogDeps,
) -> None:
    created = await catalog.service.create_product(product=product_in())
    sold = created.prices[0]
    # The cart service tells us the price was checked out.
    checked_out = CartCheckedOut(
        cart_id="c1",
        order_id="o1",
        owner=Owner(kind="anonymous", id="a1"),
        lines=[CartLineSnapshot(pricing_id=sold.id, quantity=2)],
    )
    await catalog.runtime.bus.publish(Envelope.wrap(checked_out, producer="cart"))
    await catalog.runtime.bus.idle()  # type: ignore[attr-defined]
    assert (await catalog.service.get_product_admin(key=created.key)).prices[0].used

    new = await catalog.service.change_price(
        key=created.key, pricing_id=sold.id, price=PriceIn(unit_amount=1490, currency="EUR")
    )

    assert new.id != sold.id and new.active
    admin = await catalog.service.get_product_admin(key=created.key)
    old = next(p for p in admin.prices if p.id == sold.id)
    assert (old.active, old.replaced_by, old.unit_amount) == (False, new.id, 1290)
    lookup = await catalog.service.lookup_pricings(ids=[sold.id, new.id])
    assert [(i.unit_amount, i.active) for i in lookup.items] == [(1290, False), (1490, True)]
    published = [e.payload for e in await outbox_events(catalog)][-2:]
    assert {(p["pricing_id"], p["active"], p["replaced_by"]) for p in published} == {
        (new.id, True, None),
        (sold.id, False, new.id),
    }
    with pytest.raises(PricingInactive):
        await catalog.service.change_price(
            key=created.key, pricing_id=sold.id, price=PriceIn(unit_amount=1, currency="EUR")
        )


async def test_a_pricing_change_reaches_subscribers_through_the_outbox(
    catalog: CatalogDeps,
) -> None:
    received: list[PricingChanged] = []
    done = asyncio.Event()

    async def on_pricing_changed(envelope: Envelope) -> None:
        payload = envelope.parse_payload()
        assert isinstance(payload, PricingChanged)
        received.append(payload)
        if {p.active for p in received} == {True, False}:
            done.set()

    catalog.runtime.bus.subscribe("probe", {PricingChanged.event_type: on_pricing_changed})
    created = await catalog.service.create_product(product=product_in())

    await catalog.service.deactivate_price(key=created.key, pricing_id=created.prices[0].id)

    await asyncio.wait_for(done.wait(), 5)
    assert sorted((p.pricing_id, p.active) for p in received) == [
        (created.prices[0].id, False),
        (created.prices[0].id, True),
    ]
    product = await catalog.service.get_product(key=created.key)
    assert product.active is False and product.prices == []


async def test_translations_and_product_flags_change_the_listing(catalog: CatalogDeps) -> None:
    created = await catalog.service.create_product(product=product_in())
    await catalog.service.put_translation(
        key=created.key, locale="fr-fr", translation=TranslationIn(name="Mug en grès")
    )
    assert (await catalog.service.get_product(key=created.key, locale="fr")).name == "Mug en grès"

    await catalog.service.update_product(key=created.key, changes=ProductUpdateIn(active=False))

    listed = await catalog.service.list_products(limit=100)
    assert created.key not in [p.key for p in listed.items]
    hidden = await catalog.service.list_products(limit=100, active=False)
    assert created.key in [p.key for p in hidden.items]


# --------------------------------------------------------------------------------- reads


async def test_lookup_reports_missing_ids_and_inactive_products(catalog: CatalogDeps) -> None:
    created = await catalog.service.create_product(product=product_in())
    pricing_id = created.prices[0].id
    await catalog.service.update_product(key=created.key, changes=ProductUpdateIn(active=False))

    result = await catalog.service.lookup_pricings(
        ids=[pricing_id, "nope", pricing_id, "gone"], locale="de"
    )

    assert result.missing == ["nope", "gone"]
    assert [(i.pricing_id, i.name, i.active) for i in result.items] == [
        (pricing_id, "Tasse", False)
    ]


async def test_pagination_returns_each_product_exactly_once_in_key_order(
    catalog: CatalogDeps,
) -> None:
    await generate_products(catalog.runtime, 137, "EUR", key_prefix="page")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await catalog.service.list_products(limit=10, cursor=cursor)
        seen.extend(p.key for p in page.items)
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 137
    assert pages == 14


async def test_recurring_filter(catalog: CatalogDeps) -> None:
    await generate_products(catalog.runtime, 10, "EUR", key_prefix="mix")
    recurring = await catalog.service.list_products(recurring=True)
    one_off = await catalog.service.list_products(recurring=False)
    assert [p.key for p in recurring.items] == ["mix-0000000", "mix-0000005"]
    assert all(any(price.interval for price in p.prices) for p in recurring.items)
    assert len(one_off.items) == 10


async def test_a_page_costs_the_same_number_of_queries_however_long_it_is(
    catalog: CatalogDeps,
) -> None:
    await generate_products(catalog.runtime, 120, "EUR")
    with counting_queries(catalog) as small:
        await catalog.service.list_products(limit=2, locale="de")
    with counting_queries(catalog) as large:
        await catalog.service.list_products(limit=100, locale="de")
    assert len(small) == len(large) == 5  # products, prices, images, texts, stock

    page = await catalog.service.list_products(limit=100)
    ids = [price.id for product in page.items for price in product.prices]
    with counting_queries(catalog) as one:
        await catalog.service.lookup_pricings(ids=ids[:1])
    with counting_queries(catalog) as many:
        await catalog.service.lookup_pricings(ids=ids)
    assert len(one) == len(many) == 2
