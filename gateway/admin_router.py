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

from gateway import admin_refunds
from gateway.admin_auth import PREFIX, Admin, CurrentAdmin, current_admin
from gateway.deps import Deps
from gateway.identity import ADMIN_ROLE
from libs.contracts.common import ID_PATTERN
from libs.contracts.orders import OrderOut

# Who is an admin lives in admin_auth, which the route modules build on; kept importable here.
__all__ = ["PREFIX", "Admin", "CurrentAdmin", "current_admin", "install_admin_api", "router"]

router = APIRouter(prefix=PREFIX, tags=["admin"], dependencies=[Depends(current_admin)])

Id = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN)]


class AdminCancelIn(BaseModel):
    reason: str | None = Field(None, max_length=500, description="Kept with the order.")

    model_config = ConfigDict(extra="forbid")


@router.post("/orders/{order_id}/cancel", summary="Cancel an unpaid order")
async def cancel_order(
    order_id: Id, deps: Deps, admin: CurrentAdmin, body: AdminCancelIn | None = None
) -> OrderOut:
    """Cancel any unpaid order: its open checkouts close, its stock is released, and money
    that lands for it anyway is refunded. 409 `order_already_paid` (refund it instead) or
    `order_canceled`."""
    return await deps.interactor.cancel_order_as_operator(
        order_id, actor=admin.actor, reason=body.reason if body else None
    )


def _routes(app: FastAPI) -> list[RouteContext]:
    """Every route with its effective path: an included router is one entry of `app.routes`
    that holds its routes, so filtering `app.routes` by path would miss them."""
    return list(iter_route_contexts(app.routes))


def _is_admin(route: RouteContext) -> bool:
    return isinstance(route.original_route, APIRoute) and (route.path or "").startswith(PREFIX)


def admin_openapi(app: FastAPI) -> dict[str, Any]:
    """The admin API's own OpenAPI document."""
    routes = [r for r in _routes(app) if _is_admin(r)]
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
        routes = [r for r in _routes(app) if not _is_admin(r)]
        app.openapi_schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=routes
        )
    return app.openapi_schema


def install_admin_api(app: FastAPI) -> None:
    """Mount the admin routes and split the OpenAPI documents."""
    app.include_router(router)
    app.include_router(admin_refunds.router)
    document: dict[str, Any] = {}

    @app.get(f"{PREFIX}/openapi.json", include_in_schema=False)
    async def openapi_document() -> dict[str, Any]:
        if not document:
            document.update(admin_openapi(app))
        return document

    app.openapi = lambda: store_openapi(app)  # type: ignore[method-assign]
