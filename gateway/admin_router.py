"""`/api/admin/*`: the operator's API, for a bearer token whose `roles` hold `store:admin`.

It has its own OpenAPI document (`/api/admin/openapi.json`); the store API's leaves it out.
Every admin request is logged with its actor; every change it makes is also an event.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from gateway import admin_orders
from gateway.deps import Admin, CurrentAdmin, current_admin
from gateway.identity import ADMIN_ROLE

# The operator's dependency lives in gateway/deps.py, so that route modules such as
# admin_orders use it without importing this module (which mounts them).
__all__ = ["Admin", "CurrentAdmin", "current_admin", "install_admin_api"]

PREFIX = "/api/admin"


# Every admin router is mounted with these: under /api/admin, and only for an admin.
ADMIN_ROUTES: dict[str, Any] = {
    "prefix": PREFIX,
    "tags": ["admin"],
    "dependencies": [Depends(current_admin)],
}
router = APIRouter(**ADMIN_ROUTES)


def is_admin_path(path: str | None) -> bool:
    return path is not None and (path == PREFIX or path.startswith(f"{PREFIX}/"))


def api_routes(app: FastAPI) -> list[RouteContext]:
    """Every route of the app with its full path, those of included routers too (FastAPI
    keeps an included router as one entry of `app.routes`)."""
    return [context for context in iter_route_contexts(app.routes) if context.path is not None]


def admin_openapi(app: FastAPI) -> dict[str, Any]:
    """The admin API's own OpenAPI document."""
    routes = [context for context in api_routes(app) if is_admin_path(context.path)]
    return get_openapi(
        title="Store admin API",
        version=app.version,
        description="Operator routes: orders, refunds, fulfilments, stock. Every call needs a "
        f"bearer token with the `{ADMIN_ROLE}` role and is logged with its actor.",
        routes=routes,
    )


def store_openapi(app: FastAPI) -> dict[str, Any]:
    """The store API's OpenAPI document, without the admin routes."""
    if app.openapi_schema is None:
        routes = [
            context
            for context in iter_route_contexts(app.routes)
            if not (isinstance(context.original_route, APIRoute) and is_admin_path(context.path))
        ]
        app.openapi_schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=routes
        )
    return app.openapi_schema


def install_admin_api(app: FastAPI) -> None:
    """Mount the admin routes and split the OpenAPI documents."""
    app.include_router(router)
    app.include_router(admin_orders.router, **ADMIN_ROUTES)
    document: dict[str, Any] = {}

    @app.get(f"{PREFIX}/openapi.json", include_in_schema=False)
    async def openapi_document() -> dict[str, Any]:
        if not document:
            document.update(admin_openapi(app))
        return document

    app.openapi = lambda: store_openapi(app)  # type: ignore[method-assign]
