"""What `store stock ...` runs: the catalog's own code on its database, without its HTTP server
or bus (events go to the outbox; the running catalog's relay publishes them)."""

from __future__ import annotations

from libs.contracts.catalog import StockLevelOut
from libs.runtime.migrations import upgrade
from libs.runtime.runtime import shared_for
from services.catalog.bootstrap import build_runtime, build_service
from services.catalog.settings import CatalogSettings


async def set_stock(
    *,
    key: str,
    on_hand: int,
    tracked: bool = True,
    actor: str | None = None,
    settings: CatalogSettings | None = None,
) -> StockLevelOut:
    """Set a product's units on hand, as `PUT /api/admin/products/{key}/stock` does."""
    settings = settings or CatalogSettings()
    runtime = build_runtime(settings, shared_for(settings.runtime))
    if runtime.migrate_on_start:  # embedded mode: the database may not exist yet
        await upgrade(runtime.engine, runtime.migrations_dir)
    try:
        service = build_service(settings, runtime)
        return await service.stock.set_on_hand(
            key=key, on_hand=on_hand, tracked=tracked, actor=actor
        )
    finally:
        await runtime.engine.dispose()
