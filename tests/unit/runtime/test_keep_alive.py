"""A service never closes an idle connection its callers still pool: a call reusing one just as
the server closed it came back as a disconnect, answered 503 "service unavailable"."""

from __future__ import annotations

import asyncio

from cli.main import _uvicorn_options
from libs.runtime.http import CLIENT_KEEP_ALIVE_S, ServiceClient


def test_a_service_keeps_idle_connections_longer_than_its_callers_pool_them() -> None:
    served = _uvicorn_options(internal=True)
    assert served["timeout_keep_alive"] > CLIENT_KEEP_ALIVE_S


def test_the_callers_pool_drops_idle_connections_at_its_keep_alive() -> None:
    async def pooled_keep_alive() -> float:
        client = ServiceClient(name="catalog", base_url="http://127.0.0.1:9")
        try:
            await client.request("GET", "/healthz", credential=False)
        except Exception:  # nothing listens there; the pool exists now
            pass
        keep_alive = float(client._session.connector._keepalive_timeout)
        await client.aclose()
        return keep_alive

    assert asyncio.run(pooled_keep_alive()) == CLIENT_KEEP_ALIVE_S


def test_the_gateway_keeps_the_short_public_default() -> None:
    assert "timeout_keep_alive" not in _uvicorn_options()
