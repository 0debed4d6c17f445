"""The cart service's ASGI app."""

from __future__ import annotations

from fastapi import FastAPI

from libs.runtime.app import create_service_app
from libs.runtime.runtime import Shared, shared_for
from services.cart.api import router
from services.cart.bootstrap import CartDeps, build_deps
from services.cart.settings import CartSettings


def create_app(
    settings: CartSettings | None = None,
    shared: Shared | None = None,
    deps: CartDeps | None = None,
) -> FastAPI:
    """The cart app; nothing is built before this is called."""
    if deps is None:
        settings = settings or CartSettings()
        deps = build_deps(settings, shared or shared_for(settings.runtime))
    app = create_service_app(runtime=deps.runtime, title="Store cart", routers=[router])
    app.state.cart = deps
    return app
