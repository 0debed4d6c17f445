"""The payments service app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from libs.runtime.app import create_service_app
from libs.runtime.runtime import Shared, shared_for
from services.payments.api import dev_router, routers
from services.payments.bootstrap import PaymentsDeps, build_deps
from services.payments.settings import PaymentsSettings


def create_app(
    settings: PaymentsSettings | None = None,
    shared: Shared | None = None,
    deps: PaymentsDeps | None = None,
) -> FastAPI:
    """The payments service: customers, payment attempts, providers, webhooks, subscriptions."""
    if deps is None:
        settings = settings or PaymentsSettings()
        deps = build_deps(settings, shared or shared_for(settings.runtime))
    ready = deps

    @asynccontextmanager
    async def providers() -> AsyncIterator[None]:
        try:
            yield
        finally:
            for provider in ready.providers.values():
                await provider.aclose()

    # The dev checkout pages exist only while the dev provider is chosen: with Stripe, no
    # route can mark an order paid without a verified provider event.
    mounted = [r for r in routers if r is not dev_router or deps.settings.dev_enabled]
    app = create_service_app(
        runtime=deps.runtime, title="Store payments", routers=mounted, extra_lifespan=providers
    )
    app.state.payments = deps
    return app
