"""The ceiling: a bare FastAPI app answering a small JSON document, served by the same stack as
`store serve` (uvicorn, uvloop, httptools, one worker). Every workload is compared with it, in
the same run, because this machine's absolute figures drift from run to run.

The hop variant answers the same document fetched from an upstream ceiling through the store's
own `ServiceClient` (libs/runtime/http.py), parsed into a model and served again, which is what
the gateway does for each call: the price of one service hop, without any business logic.

    python -m bench.ceiling PORT                 # the ceiling
    python -m bench.ceiling PORT UPSTREAM_URL    # the hop in front of it
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from pydantic import BaseModel

UPSTREAM_ENV = "BENCH_UPSTREAM_URL"


class Price(BaseModel):
    unit_amount: int
    currency: str


class Document(BaseModel):
    key: str
    name: str
    prices: list[Price]


def create_app() -> FastAPI:
    """One route, about the size of a small product document."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/ping")
    async def ping() -> dict[str, object]:
        return {"key": "mug", "name": "Mug", "prices": [{"unit_amount": 1290, "currency": "EUR"}]}

    return app


def create_hop_app() -> FastAPI:
    """The same route, answered by calling the upstream ceiling through `ServiceClient`."""
    from libs.runtime.http import ServiceClient

    clients: dict[str, ServiceClient] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        clients["upstream"] = ServiceClient(name="upstream", base_url=os.environ[UPSTREAM_ENV])
        yield
        await clients["upstream"].aclose()

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)

    @app.get("/ping")
    async def ping() -> Document:
        return await clients["upstream"].call("GET", "/ping", Document)

    return app


def main(port: int, upstream: str | None = None) -> None:
    import uvicorn

    from cli.main import _uvicorn_options

    if upstream:
        os.environ[UPSTREAM_ENV] = upstream
    # The same options `store serve` passes (uvloop, httptools, no access log).
    uvicorn.run(
        "bench.ceiling:create_hop_app" if upstream else "bench.ceiling:create_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        **_uvicorn_options(),
    )


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None)
