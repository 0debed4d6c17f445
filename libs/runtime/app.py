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

    # A service's API description names its admin and internal routes: it is served only with
    # the service credential, and there is no browsable UI (a browser cannot send the header).
    app = FastAPI(
        title=title,
        version=version,
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    install_problem_handlers(app)
    app.add_middleware(ObservabilityMiddleware, service=runtime.name)
    runtime.telemetry.instrument_app(app, runtime.name)
    app.include_router(health_router(runtime.name, runtime.readiness, degradable=("broker",)))
    for router in public_routers:
        app.include_router(router)
    for router in routers:
        app.include_router(router, dependencies=[Depends(require_service_token)])
    app.include_router(description_router(app), dependencies=[Depends(require_service_token)])
    return app


def description_router(app: FastAPI) -> APIRouter:
    """`/openapi.json`: the app's OpenAPI document."""
    router = APIRouter(include_in_schema=False)

    @router.get("/openapi.json")
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    return router


def health_router(
    name: str, readiness: Callable[[], Any], *, degradable: Sequence[str] = ()
) -> APIRouter:
    """`/healthz` says the process is alive; `/readyz` says it can serve requests.

    A check named in `degradable` (the broker: the outbox keeps events until it is back) that
    fails makes the process "degraded", still ready; any other failing check makes it
    "unavailable" (503).
    """
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok", "service": name}

    @router.get("/readyz", summary="Readiness")
    async def readyz() -> JSONResponse:
        """The process can serve: its database and Redis answer; a broker outage only degrades."""
        checks: dict[str, bool] = await readiness()
        failing = [check for check, ok in checks.items() if not ok]
        degraded = [check for check in failing if check in degradable]
        if len(degraded) < len(failing):
            status = "unavailable"
        else:
            status = "degraded" if degraded else "ready"
        return JSONResponse(
            {"status": status, "service": name, "checks": checks, "degraded": degraded},
            status_code=503 if status == "unavailable" else 200,
        )

    router.add_api_route("/metrics", metrics_endpoint, include_in_schema=False)
    return router
