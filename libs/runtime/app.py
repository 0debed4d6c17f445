"""The FastAPI app every service is built on: lifespan, problems, health, metrics, correlation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import JSONResponse

from libs.runtime.auth import require_service_token
from libs.runtime.observability import ObservabilityMiddleware, metrics_endpoint
from libs.runtime.problems import install_problem_handlers
from libs.runtime.runtime import Runtime

Extra = Callable[[], AbstractAsyncContextManager[Any]]


def create_service_app(
    *,
    runtime: Runtime,
    title: str,
    routers: Sequence[APIRouter],
    public_routers: Sequence[APIRouter] = (),
    extra_lifespan: Extra | None = None,
    version: str = "0.1.0",
) -> FastAPI:
    """A service app: starts its runtime, serves its routers plus /healthz, /readyz, /metrics.

    Every route of `routers` needs the service credential (libs/runtime/auth.py), whatever
    the router itself declares; `public_routers` (public files only) and the health routes
    do not."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            if extra_lifespan is None:
                yield
            else:
                async with extra_lifespan():
                    yield
        finally:
            await runtime.stop()

    app = FastAPI(title=title, version=version, lifespan=lifespan)
    app.state.runtime = runtime
    install_problem_handlers(app)
    app.add_middleware(ObservabilityMiddleware, service=runtime.name)
    app.include_router(health_router(runtime.name, runtime.readiness))
    for router in public_routers:
        app.include_router(router)
    for router in routers:
        app.include_router(router, dependencies=[Depends(require_service_token)])
    return app


def health_router(name: str, readiness: Callable[[], Any]) -> APIRouter:
    """`/healthz` says the process is alive; `/readyz` says its backing services answer."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok", "service": name}

    @router.get("/readyz", summary="Readiness")
    async def readyz() -> JSONResponse:
        """The process can serve: its database, Redis and broker answer."""
        checks = await readiness()
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "service": name, "checks": checks},
            status_code=200 if ready else 503,
        )

    router.add_api_route("/metrics", metrics_endpoint, include_in_schema=False)
    return router
