"""Wiring of the orders service: runtime, catalog client, service, subscriptions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from libs.runtime.runtime import Runtime, Shared, shared_for
from services.orders.catalog import Catalog, HttpCatalog
from services.orders.handlers import HANDLERS
from services.orders.service import OrdersService, utc_now
from services.orders.settings import OrdersSettings
from services.orders.tables import metadata


@dataclass(frozen=True)
class OrdersDeps:
    settings: OrdersSettings
    runtime: Runtime
    catalog: Catalog
    service: OrdersService


def build_deps(
    settings: OrdersSettings,
    shared: Shared | None = None,
    *,
    catalog: Catalog | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> OrdersDeps:
    """Build the service from settings; tests may pass a catalog and a clock."""
    shared = shared or shared_for(settings.runtime)
    runtime = Runtime.for_service(
        name="orders",
        settings=settings,
        metadata=metadata,
        migrations_dir=Path(__file__).parent / "migrations",
        shared=shared,
    )
    catalog = catalog or HttpCatalog(lambda: runtime.client("catalog"))
    service = OrdersService(runtime=runtime, catalog=catalog, settings=settings, clock=clock)
    runtime.subscribe(service, HANDLERS)
    return OrdersDeps(settings=settings, runtime=runtime, catalog=catalog, service=service)
