"""The embedded mode: the gateway and every service in one process, on one port.

SQLite files under STORE_DATA_DIR, one in-process bus, one in-process Redis substitute, the
dev payment provider, the shopper's e-mails written as .eml files under STORE_DATA_DIR/mail.
The gateway reaches the services over in-process ASGI transport, exactly as it reaches them
over HTTP in the distributed mode.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from libs.runtime.runtime import shared_for
from libs.runtime.settings import RuntimeSettings
from libs.runtime.telemetry import Telemetry

SERVICES = ("catalog", "cart", "orders", "payments", "notifications")


def create_embedded_app(
    runtime: RuntimeSettings | None = None, telemetry: Telemetry | None = None
) -> FastAPI:
    """The whole store as one ASGI app (the gateway, with the services inside)."""
    from gateway.app import create_app as create_gateway
    from gateway.settings import GatewaySettings

    runtime = runtime or RuntimeSettings()
    if not runtime.embedded:
        raise ValueError("the embedded mode needs STORE_BROKER_URL=memory://")
    shared = shared_for(runtime, composed=True, telemetry=telemetry)
    services: dict[str, FastAPI] = {}
    for name in SERVICES:
        module = importlib.import_module(f"services.{name}.app")
        settings_cls = _settings_class(name)
        services[name] = module.create_app(settings=settings_cls(runtime=runtime), shared=shared)
        shared.directory.register_app(name, services[name])

    @asynccontextmanager
    async def run_services() -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for app in services.values():
                await stack.enter_async_context(app.router.lifespan_context(app))
            await shared.bus.start()
            stack.push_async_callback(shared.bus.stop)
            yield

    gateway = create_gateway(
        settings=GatewaySettings(runtime=runtime), shared=shared, extra_lifespan=run_services
    )
    gateway.state.services = services
    gateway.state.shared = shared
    return gateway


def _settings_class(service: str) -> Any:
    module = importlib.import_module(f"services.{service}.settings")
    return getattr(module, f"{service.capitalize()}Settings")
