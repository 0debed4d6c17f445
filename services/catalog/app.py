"""The catalog service's FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from libs.runtime.app import create_service_app
from libs.runtime.runtime import Shared, shared_for
from services.catalog.api import PUBLIC_ROUTERS, ROUTERS
from services.catalog.bootstrap import CatalogDeps, build_deps
from services.catalog.settings import CatalogSettings
from services.catalog.stock import sweeping

log = structlog.get_logger(__name__)


def create_app(
    settings: CatalogSettings | None = None,
    shared: Shared | None = None,
    deps: CatalogDeps | None = None,
) -> FastAPI:
    """The catalog app; in embedded mode it seeds an empty catalog from the example products."""
    if deps is None:
        settings = settings or CatalogSettings()
        deps = build_deps(settings, shared or shared_for(settings.runtime))
    ready = deps

    @asynccontextmanager
    async def seed_when_empty() -> AsyncIterator[None]:
        if ready.settings.runtime.embedded and ready.settings.seed:
            from services.catalog.setup import seed_if_empty

            await seed_if_empty(ready.service, ready.settings)
        async with sweeping(
            ready.service.stock,
            interval_s=ready.settings.stock_sweep_interval_s,
            batch=ready.settings.stock_sweep_batch,
        ):
            yield

    app = create_service_app(
        runtime=deps.runtime,
        title="Store catalog",
        routers=ROUTERS,
        public_routers=PUBLIC_ROUTERS,
        extra_lifespan=seed_when_empty,
    )
    app.state.deps = deps
    return app
