"""The orders service app."""

from __future__ import annotations

from fastapi import FastAPI

from libs.runtime.app import create_service_app
from libs.runtime.runtime import Shared, shared_for
from services.orders.admin_api import router as admin_router
from services.orders.api import router
from services.orders.bootstrap import OrdersDeps, build_deps
from services.orders.settings import OrdersSettings


def create_app(
    settings: OrdersSettings | None = None,
    shared: Shared | None = None,
    deps: OrdersDeps | None = None,
) -> FastAPI:
    """The orders service: prepare_order, the order archive, the paid state."""
    if deps is None:
        settings = settings or OrdersSettings()
        deps = build_deps(settings, shared or shared_for(settings.runtime))
    app = create_service_app(
        runtime=deps.runtime, title="Store orders", routers=[router, admin_router]
    )
    app.state.orders = deps
    return app
