"""`/api/admin/*`: the operator's API, for a bearer token whose `roles` hold `store:admin`.

It has its own OpenAPI document (`/api/admin/openapi.json`); the store API's leaves it out.
Every admin request is logged with its actor; every change it makes is also an event.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field

from gateway import admin_orders, admin_refunds, admin_stock
from gateway.deps import Admin, CurrentAdmin, Deps, current_admin
from gateway.idempotency import AdminIdempotent
from gateway.identity import ADMIN_ROLE
from libs.contracts.common import ID_PATTERN
from libs.contracts.orders import OrderOut

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


Id = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN)]


class AdminCancelIn(BaseModel):
    reason: str | None = Field(None, max_length=500, description="Kept with the order.")

    model_config = ConfigDict(extra="forbid")


@router.post(
    "/orders/{order_id}/cancel",
    summary="Cancel an unpaid order",
    dependencies=[AdminIdempotent],
)
async def cancel_order(
    order_id: Id, deps: Deps, admin: CurrentAdmin, body: AdminCancelIn | None = None
) -> OrderOut:
    """Cancel any unpaid order: its open checkouts close, its stock is released, and money
    that lands for it anyway is refunded. 409 `order_already_paid` (refund it instead) or
    `order_canceled`."""
    return await deps.admin.cancel_order(
        order_id, actor=admin.actor, reason=body.reason if body else None
    )


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
    app.include_router(admin_refunds.router, **ADMIN_ROUTES)
    app.include_router(admin_stock.router, **ADMIN_ROUTES)
    document: dict[str, Any] = {}

    @app.get(f"{PREFIX}/openapi.json", include_in_schema=False)
    async def openapi_document() -> dict[str, Any]:
        if not document:
            document.update(admin_openapi(app))
        return document

    app.openapi = lambda: store_openapi(app)  # type: ignore[method-assign]
