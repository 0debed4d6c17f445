"""`/api/admin/*`: the operator's API, for a bearer token whose `roles` hold `store:admin`.

It has its own OpenAPI document (`/api/admin/openapi.json`); the store API's leaves it out.
Every admin request is logged with its actor; every change it makes is also an event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Header, Path, Request
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from gateway.deps import Deps
from gateway.identity import ADMIN_ROLE
from libs.contracts.common import ID_PATTERN
from libs.contracts.orders import OrderOut
from libs.runtime.problems import Forbidden, Unauthorized

log = structlog.get_logger(__name__)

PREFIX = "/api/admin"


@dataclass(frozen=True)
class Admin:
    """An operator: the `sub` of a verified token holding the admin role."""

    actor: str


async def current_admin(
    request: Request,
    deps: Deps,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Admin:
    """401 without a valid bearer token, 403 with one that lacks `store:admin`. The anonymous
    cookie plays no part here."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "The admin API needs `Authorization: Bearer <token>` with the store:admin role.",
            code="invalid_token",
        )
    claims = await deps.verifier.verify_claims(token.strip())
    if not claims.is_admin:
        log.warning("admin.refused", user_id=claims.user_id, path=request.url.path)
        raise Forbidden(f"This needs the {ADMIN_ROLE} role.", code="admin_role_required")
    log.info("admin.action", actor=claims.user_id, method=request.method, path=request.url.path)
    return Admin(actor=claims.user_id)


CurrentAdmin = Annotated[Admin, Depends(current_admin)]

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


def admin_openapi(app: FastAPI) -> dict[str, Any]:
    """The admin API's own OpenAPI document."""
    routes = [r for r in app.routes if isinstance(r, APIRoute) and r.path.startswith(PREFIX)]
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
            r for r in app.routes if not (isinstance(r, APIRoute) and r.path.startswith(PREFIX))
        ]
        app.openapi_schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=routes
        )
    return app.openapi_schema


def install_admin_api(app: FastAPI, *routers: APIRouter) -> None:
    """Mount the admin routes (and `routers` of other admin modules, under the same prefix and
    guard) and split the OpenAPI documents."""
    app.include_router(router)
    for more in routers:
        app.include_router(more, prefix=PREFIX, dependencies=[Depends(current_admin)])
    document: dict[str, Any] = {}

    @app.get(f"{PREFIX}/openapi.json", include_in_schema=False)
    async def openapi_document() -> dict[str, Any]:
        if not document:
            document.update(admin_openapi(app))
        return document

    app.openapi = lambda: store_openapi(app)  # type: ignore[method-assign]
