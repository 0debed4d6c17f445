"""The catalog on real PostgreSQL, migrated from scratch: setupproducts, listing plans, races."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import text

from libs.contracts.catalog import PriceIn, ProductIn
from libs.runtime.runtime import shared_for
from libs.runtime.settings import RuntimeSettings
from services.catalog.bootstrap import CatalogDeps, build_deps
from services.catalog.bulk import generate_products
from services.catalog.domain import encode_cursor
from services.catalog.settings import EXAMPLE_PRODUCTS, CatalogSettings
from services.catalog.setup import EXIT_ENTRY_ERRORS, EXIT_OK, setupproducts

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(tmp_path: Path, pg_database_url: str) -> CatalogSettings:
    return CatalogSettings(
        runtime=RuntimeSettings(data_dir=tmp_path, broker_url="memory://"),
        database_url=pg_database_url,
        seed=False,
    )


@pytest.fixture
async def catalog(settings: CatalogSettings) -> AsyncIterator[CatalogDeps]:
    """Migrated (embedded settings migrate on start) and running on PostgreSQL."""
    deps = build_deps(settings, shared_for(settings.runtime))
    await deps.runtime.start()
    try:
        yield deps
    finally:
        await deps.runtime.stop()


async def run(config: str, settings: CatalogSettings, *, dry_run: bool = False) -> tuple[int, str]:
    out = io.StringIO()
    code = await setupproducts(
        config=config,
        dry_run=dry_run,
        settings=settings,
        console=Console(file=out, width=200, color_system=None),
    )
    return code, out.getvalue()


def entries() -> int:
    example = json.loads(EXAMPLE_PRODUCTS.read_text())
    return len(example["products"]) + len(example["tax_rates"]) + len(example["shipping_methods"])


async def everything(catalog: CatalogDeps) -> dict[str, Any]:
    keys = []
    cursor = None
    while True:
        page = await catalog.service.list_products(limit=3, cursor=cursor)
        keys.extend(p.key for p in page.items)
        if (cursor := page.next_cursor) is None:
            break
    return {key: await catalog.service.get_product_admin(key=key) for key in keys}


async def test_setupproducts_on_an_empty_postgresql_catalog_twice(
    settings: CatalogSettings,
) -> None:
    # The command migrates the empty database itself.
    code, output = await run(str(EXAMPLE_PRODUCTS), settings)
    assert code == EXIT_OK, output

    deps = build_deps(settings, shared_for(settings.runtime))
    try:
        first = await everything(deps)
        code, output = await run(str(EXAMPLE_PRODUCTS), settings)
        assert code == EXIT_OK
        assert f"0 created, 0 updated, {entries()} unchanged, 0 failed" in output
        assert await everything(deps) == first
        assert len(first) == len(json.loads(EXAMPLE_PRODUCTS.read_text())["products"])
        german = await deps.service.get_product(key="coffee", locale="de")
        assert german.name.startswith("Hausmischung") and len(german.prices) == 2
        [food] = await deps.service.get_tax_rates(country="DE", tax_code="food")
        assert str(food.percentage) == "7"
        shipping = await deps.service.shipping.list_shipping_methods(
            country="AT", currency="EUR", locale="de"
        )
        assert [(m.code, m.name, m.amount) for m in shipping] == [
            ("standard", "Standardversand", 490),
            ("express", "Expressversand", 1290),
        ]
    finally:
        await deps.runtime.engine.dispose()


async def test_a_broken_entry_on_postgresql_is_not_half_made(
    settings: CatalogSettings, tmp_path: Path
) -> None:
    entries = [
        {"key": "fine", "prices": [{"amount": "1.00"}], "translations": {"en": {"name": "Fine"}}},
        {
            "key": "half",
            "prices": [
                {"amount": "1.00"},
                {"amount": "2.00", "interval": "week", "interval_count": 53},
            ],
            "translations": {"en": {"name": "Half"}},
        },
    ]
    code, output = await run(json.dumps(entries), settings)

    assert code == EXIT_ENTRY_ERRORS
    assert "half" in output and "prices.1.interval_count" in output
    deps = build_deps(settings, shared_for(settings.runtime))
    try:
        assert list(await everything(deps)) == ["fine"]
        inactive = await deps.service.list_products(active=False)
        assert inactive.items == []
    finally:
        await deps.runtime.engine.dispose()


async def test_the_listing_walks_an_index_whatever_the_catalog_size(catalog: CatalogDeps) -> None:
    await generate_products(catalog.runtime, 6_000, "EUR", key_prefix="plan")
    async with catalog.runtime.engine.begin() as connection:
        await connection.execute(text("ANALYZE"))

    statements: list[tuple[str, Any]] = []

    def capture(_conn, _cursor, statement, parameters, *_args) -> None:  # type: ignore[no-untyped-def]
        if "FROM products" in statement:
            statements.append((statement, parameters))

    from sqlalchemy import event

    engine = catalog.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        await catalog.service.list_products(limit=20, cursor=encode_cursor("plan-0003000"))
        await catalog.service.list_products(limit=20, recurring=True)
    finally:
        event.remove(engine, "before_cursor_execute", capture)

    async with catalog.runtime.engine.connect() as connection:
        for statement, parameters in statements:
            raw = await connection.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters)
            plan = json.dumps(raw.scalar())
            # An index range scan in key order under the LIMIT: no full scan, no sort.
            assert '"Index' in plan and "Seq Scan" not in plan and '"Sort"' not in plan, plan


async def test_pagination_on_postgresql_returns_each_product_once(catalog: CatalogDeps) -> None:
    await generate_products(catalog.runtime, 250, "KWD", key_prefix="kw")
    seen = []
    cursor = None
    while True:
        page = await catalog.service.list_products(limit=100, cursor=cursor)
        seen.extend(page.items)
        if (cursor := page.next_cursor) is None:
            break
    assert len({p.key for p in seen}) == len(seen) == 250
    assert all(
        price.currency == "KWD" and price.unit_amount % 1000 == 0
        for p in seen
        for price in p.prices
    )


async def test_racing_creates_of_one_key_make_one_product(catalog: CatalogDeps) -> None:
    body = ProductIn(
        key="race",
        translations={"en": {"name": "Race"}},
        prices=[PriceIn(unit_amount=100, currency="EUR")],
    )
    results = await asyncio.gather(
        *(catalog.service.create_product(product=body) for _ in range(4)), return_exceptions=True
    )
    created = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(created) == 1
    assert all(getattr(r, "code", None) == "product_exists" for r in refused), refused
    assert len((await catalog.service.get_product_admin(key="race")).prices) == 1


async def test_racing_uploads_of_one_image_keep_its_files(catalog: CatalogDeps) -> None:
    await catalog.service.create_product(
        product=ProductIn(key="racy", translations={"en": {"name": "Racy"}})
    )
    data = (EXAMPLE_PRODUCTS.parent / "images" / "mug.jpg").read_bytes()

    results = await asyncio.gather(
        *(catalog.service.upload_image(key="racy", data=data) for _ in range(3)),
        return_exceptions=True,
    )

    stored = [r for r in results if not isinstance(r, BaseException)]
    assert len(stored) == 1
    assert all(getattr(r, "code", None) == "image_exists" for r in results if r not in stored)
    media = catalog.service.media.media_root
    for url in [stored[0].url, *stored[0].thumbnails.values()]:
        assert (media / url.removeprefix("/media/")).is_file(), url


async def test_the_outbox_relay_reads_only_what_it_has_to_publish(catalog: CatalogDeps) -> None:
    """A week of published events kept in the outbox: the relay's batch and its check for
    parked rows walk the migrated partial indexes, never the history."""
    async with catalog.runtime.engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO outbox (event_id, type, envelope, created_at, published_at, attempts)"
                " SELECT gen_random_uuid()::text, 'old.v1', '{}'::jsonb, now(), now(), 0"
                " FROM generate_series(1, 20000)"
            )
        )
        await connection.execute(text("ANALYZE outbox"))
    from sqlalchemy.dialects import postgresql

    query = catalog.runtime.relay._pending()
    statement = str(
        query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    )
    async with catalog.runtime.engine.connect() as connection:
        raw = await connection.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement)
        plan = json.dumps(raw.scalar())
    assert "ix_outbox_unpublished" in plan and "ix_outbox_parked" in plan, plan
    assert "Seq Scan" not in plan, plan
