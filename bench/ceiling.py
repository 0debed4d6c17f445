"""The ceiling: a bare FastAPI app answering a small JSON document, served by the same stack as
`store serve` (uvicorn, uvloop, httptools, one worker). Every workload is compared with it, in
the same run, because this machine's absolute figures drift from run to run.

Run it on its own with `python -m bench.ceiling PORT`.
"""

from __future__ import annotations

import sys

from fastapi import FastAPI


def create_app() -> FastAPI:
    """One route, about the size of a small product document."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/ping")
    async def ping() -> dict[str, object]:
        return {"key": "mug", "name": "Mug", "prices": [{"unit_amount": 1290, "currency": "EUR"}]}

    return app


def main(port: int) -> None:
    import uvicorn

    from libs.cli.main import _uvicorn_options

    # The same options `store serve` passes (uvloop, httptools, no access log).
    uvicorn.run(
        "bench.ceiling:create_app", factory=True, host="127.0.0.1", port=port, **_uvicorn_options()
    )


if __name__ == "__main__":
    main(int(sys.argv[1]))
