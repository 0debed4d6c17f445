"""Who may use `/api/admin/*`: a bearer token whose `roles` hold `store:admin`.

Its own module, so that the admin route modules and `admin_router` (which mounts them) both
build on it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import structlog
from fastapi import Depends, Header, Request

from gateway.deps import Deps
from gateway.identity import ADMIN_ROLE
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
