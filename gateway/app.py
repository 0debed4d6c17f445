"""The gateway app: the public store API in front of the four services."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Path, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import cart_router, payments_router, store_router
from gateway.admin_interactor import AdminInteractor
from gateway.admin_router import install_admin_api
from gateway.cache import ProductPageCache, ProductPageCacheMiddleware
from gateway.clients import Clients
from gateway.deps import Deps, GatewayDeps
from gateway.forwarded import ForwardedMiddleware, TrustedProxies
from gateway.idempotency import install_idempotency
from gateway.identity import AnonymousCookie, Caller, MergedAnonymousIds, TokenVerifier
from gateway.interactor import StoreInteractor
from gateway.origin import PublicOriginMiddleware
from gateway.rate_limits import RateLimits, rate_limit
from gateway.security import BodyLimitMiddleware, checked_media_path
from gateway.settings import GatewaySettings
from gateway.storefront import mount_storefront
from libs.runtime.app import health_router
from libs.runtime.asyncapi import asyncapi_document
from libs.runtime.observability import ObservabilityMiddleware
from libs.runtime.problems import install_problem_handlers
from libs.runtime.redis import create_redis
from libs.runtime.runtime import Shared, shared_for
from libs.runtime.settings import RuntimeSettings

SERVICES = ("catalog", "cart", "orders", "payments")
CART_WRITES = ("POST", "PUT", "PATCH", "DELETE")

log = structlog.get_logger(__name__)

Extra = Callable[[], AbstractAsyncContextManager[Any]]


def create_app(
    settings: GatewaySettings | None = None,
    shared: Shared | None = None,
    extra_lifespan: Extra | None = None,
) -> FastAPI:
    """Build the gateway. `shared` carries the service directory (URLs or in-process apps)."""
    settings = settings or GatewaySettings()
    shared = shared or shared_for(settings.runtime)
    verifier = TokenVerifier(settings)
    cookie = AnonymousCookie(settings)
    # One client for the idempotency keys and the record of merged anonymous ids.
    redis = create_redis(settings.runtime.redis_url, fake_server=shared.fake_redis_server)
    clients = Clients(shared.directory)
    merged_ids = MergedAnonymousIds.for_cookie(redis, cookie)
    deps = GatewayDeps(
        settings=settings,
        interactor=StoreInteractor(clients),
        verifier=verifier,
        cookie=cookie,
        rate_limits=RateLimits.from_settings(
            settings, verifier=verifier, cookie=cookie, merged_ids=merged_ids
        ),
        merged_ids=merged_ids,
        admin=AdminInteractor(clients),
    )
    _warn_about_opt_outs(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            if extra_lifespan is None:
                yield
            else:
                async with extra_lifespan():
                    yield
        finally:
            await shared.directory.aclose()
            await idempotency.aclose()
            shared.telemetry.shutdown()

    app = FastAPI(
        title="Store API",
        version="0.1.0",
        description="The store API: catalog, cart, checkout, orders, customers, subscriptions. "
        "Money is integer minor units plus an ISO 4217 currency; errors are "
        "application/problem+json with a stable `code`.",
        lifespan=lifespan,
    )
    app.state.gateway = deps
    install_problem_handlers(app)
    app.add_middleware(AnonymousCookieMiddleware, cookie=deps.cookie)
    app.add_middleware(
        ProductPageCacheMiddleware,
        cache=ProductPageCache(
            ttl_s=settings.product_cache_ttl_s, max_bytes=settings.product_cache_max_bytes
        ),
    )
    idempotency = install_idempotency(
        app,
        redis=redis,
        ttl_s=settings.idempotency_ttl_s,
        lock_s=settings.idempotency_lock_s,
    )
    # Outside the idempotency middleware, so the body it reads is already bounded.
    app.add_middleware(
        BodyLimitMiddleware,
        default_bytes=settings.body_limit_bytes,
        webhook_bytes=settings.webhook_body_limit_bytes,
    )
    # Outside every route and the idempotency store: a request for a foreign host is refused
    # before anything runs for it; inside observability, so the refusals are counted.
    app.add_middleware(
        PublicOriginMiddleware, origin=settings.public_origin, hosts=settings.accepted_hosts
    )
    app.add_middleware(ObservabilityMiddleware, service="gateway")
    # Outermost: everything inside sees the client's address and scheme as trusted proxies and
    # front ends report them.
    app.add_middleware(
        ForwardedMiddleware,
        proxies=TrustedProxies.parse(settings.forwarded_allow_ips),
        frontend_tokens=settings.frontend_tokens,
    )
    shared.telemetry.instrument_app(app, "gateway")
    limited = [Depends(rate_limit)]
    app.include_router(store_router.router, dependencies=limited)
    app.include_router(cart_router.router, dependencies=limited)
    app.include_router(payments_router.router, dependencies=limited)
    install_admin_api(app)
    app.include_router(_operations_router(shared, settings.runtime))
    mount_storefront(app, settings)
    return app


def _warn_about_opt_outs(settings: GatewaySettings) -> None:
    if not settings.runtime.embedded and settings.cookie_secure is False:
        log.warning(
            "gateway.cookie_not_secure",
            detail="GATEWAY_COOKIE_SECURE=false: the anonymous cookie also travels over plain "
            "HTTP; acceptable only for a local run without TLS.",
        )


def _operations_router(shared: Shared, runtime: RuntimeSettings) -> APIRouter:
    async def readiness() -> dict[str, bool]:
        """Every service answers its own readiness check."""

        async def check(name: str) -> bool:
            try:
                response = await shared.directory.client(name).request("GET", "/readyz")
                return response.status_code == 200
            except Exception:
                return False

        results = await asyncio.gather(*(check(name) for name in SERVICES))
        return dict(zip(SERVICES, results, strict=True))

    router = health_router("gateway", readiness)

    @router.get("/asyncapi", summary="AsyncAPI document of every event")
    async def asyncapi() -> dict[str, Any]:
        """The events on the bus, generated from the contracts."""
        return asyncapi_document(exchange=runtime.exchange, queue_prefix=runtime.queue_prefix)

    @router.get("/media/{path:path}", include_in_schema=False)
    async def media(
        path: Annotated[str, Path(max_length=500)], request: Request, deps: Deps
    ) -> Response:
        upstream = await deps.interactor.clients.catalog.media(checked_media_path(request, path))
        headers = {
            k: v
            for k, v in upstream.headers.items()
            if k in ("content-type", "cache-control", "etag", "last-modified")
        }
        return Response(upstream.content, status_code=upstream.status_code, headers=headers)

    return router


class AnonymousCookieMiddleware:
    """Sets or clears the anonymous cookie according to what the request's Caller decided."""

    def __init__(self, app: ASGIApp, *, cookie: AnonymousCookie) -> None:
        self.app = app
        self.cookie = cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        # Writing the cart renews the anonymous cookie: its max age slides with the cart.
        cart_write = scope["method"] in CART_WRITES and scope["path"].startswith("/api/store/cart")

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                caller: Caller | None = scope.get("state", {}).get("caller")
                if caller is not None and cart_write and message.get("status", 500) < 400:
                    caller.set_cookie = caller.set_cookie or caller.anonymous_id is not None
                header = self._set_cookie_header(caller)
                if header is not None:
                    message.setdefault("headers", []).append((b"set-cookie", header.encode()))
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _set_cookie_header(self, caller: Caller | None) -> str | None:
        if caller is None:
            return None
        if caller.set_cookie and caller.anonymous_id:
            return self.cookie.set_header(caller.anonymous_id)
        if caller.clear_cookie:
            return self.cookie.clear_header()
        return None
