"""Request dependencies of the gateway: the interactor, the caller, the locale."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import structlog
from fastapi import Depends, Header, Query, Request

from gateway.admin_interactor import AdminInteractor
from gateway.identity import (
    ADMIN_ROLE,
    AnonymousCookie,
    Caller,
    MergedAnonymousIds,
    TokenVerifier,
)
from gateway.interactor import Locale, StoreInteractor
from gateway.rate_limits import RateLimits
from gateway.settings import GatewaySettings
from libs.runtime.problems import Forbidden, ProblemError, Unauthorized

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class GatewayDeps:
    settings: GatewaySettings
    interactor: StoreInteractor
    verifier: TokenVerifier
    cookie: AnonymousCookie
    rate_limits: RateLimits
    merged_ids: MergedAnonymousIds
    admin: AdminInteractor


async def gateway_deps(request: Request) -> GatewayDeps:
    return request.app.state.gateway


async def current_caller(
    request: Request,
    deps: Annotated[GatewayDeps, Depends(gateway_deps)],
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Caller:
    """Identify the caller; on the first request with both a user and an anonymous cookie,
    merge the anonymous shopper into the user and clear the cookie. A cookie whose anonymous id
    was merged before is dead: it is cleared and counts as no identity, so a copy of it can
    neither see nor add to what moved to the user, nor check out in the user's name."""
    caller = Caller()
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("Use `Authorization: Bearer <token>`.", code="invalid_token")
        claims = await deps.verifier.verify_claims(token.strip())
        caller.user_id, caller.orgs = claims.user_id, claims.orgs
    caller.anonymous_id = deps.cookie.of_request(request)
    if caller.anonymous_id and await deps.merged_ids.is_merged_for_request(
        request, caller.anonymous_id
    ):
        caller.anonymous_id = None
        caller.merged_cookie = caller.clear_cookie = True
    if caller.user_id and caller.anonymous_id:
        try:
            caller.merge_result = await deps.interactor.anonymous_to_user(
                anonymous_id=caller.anonymous_id, user_id=caller.user_id
            )
        except ProblemError as exc:
            # Serve the request as the user; the cookie stays, so the merge is retried next time.
            log.warning("identity.merge_deferred", error=exc.code)
        else:
            # Merged now or before (then into whichever user): either way the id is dead.
            await deps.merged_ids.record(caller.anonymous_id)
            caller.clear_cookie = True
        caller.anonymous_id = None
    request.state.caller = caller
    return caller


async def current_locale(
    deps: Annotated[GatewayDeps, Depends(gateway_deps)],
    locale: Annotated[
        str | None,
        Query(max_length=35, description="Locale of texts, e.g. `de`; else Accept-Language."),
    ] = None,
    accept_language: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Locale:
    return Locale(
        explicit=locale,
        accept_language=accept_language[:200] if accept_language else None,
        default=deps.settings.default_locale,
    )


@dataclass(frozen=True)
class Admin:
    """An operator: the `sub` of a verified token holding the admin role."""

    actor: str


async def current_admin(
    request: Request,
    deps: Annotated[GatewayDeps, Depends(gateway_deps)],
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


Deps = Annotated[GatewayDeps, Depends(gateway_deps)]
CurrentCaller = Annotated[Caller, Depends(current_caller)]
CurrentLocale = Annotated[Locale, Depends(current_locale)]
CurrentAdmin = Annotated[Admin, Depends(current_admin)]
