"""One `store` fixture, run against both modes: `store dev` (embedded) and the five
`store serve` processes over real PostgreSQL, Redis and RabbitMQ (distributed)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cluster import RunningStore, distributed, embedded


@pytest.fixture(scope="session", params=["embedded", "distributed"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStore]:
    if request.param == "embedded":
        with embedded(tmp_path_factory.mktemp("embedded")) as running:
            yield running
        return
    postgres = request.getfixturevalue("postgres_server_url")
    redis = request.getfixturevalue("redis_url")
    amqp = request.getfixturevalue("amqp_url")
    with distributed(
        postgres_url=postgres,
        redis_url=redis,
        amqp_url=amqp,
        log_dir=tmp_path_factory.mktemp("distributed"),
    ) as running:
        yield running


@pytest.fixture
async def client(store: RunningStore) -> AsyncIterator[httpx.AsyncClient]:
    """A fresh shopper: its own cookie jar."""
    async with httpx.AsyncClient(base_url=store.base_url, timeout=15) as http:
        yield http


@pytest.fixture
async def new_client(store: RunningStore) -> AsyncIterator[Callable[[], httpx.AsyncClient]]:
    """Make more shoppers in one test, each with its own cookie jar."""
    clients: list[httpx.AsyncClient] = []

    def make() -> httpx.AsyncClient:
        http = httpx.AsyncClient(base_url=store.base_url, timeout=15)
        clients.append(http)
        return http

    yield make
    for http in clients:
        await http.aclose()


def token_for(
    store: RunningStore, user: str, orgs: list[str] | None = None, roles: list[str] | None = None
) -> str:
    from gateway.identity import issue_token
    from gateway.settings import DEV_JWT_SECRET

    secret = store.env.get("GATEWAY_JWT_SECRET", DEV_JWT_SECRET)
    return issue_token(user, secret=secret, orgs=orgs or [], roles=roles or [])


def admin_headers(store: RunningStore, user: str = "operator-1") -> dict[str, str]:
    """An operator's bearer token (role `store:admin`)."""
    return {"authorization": f"Bearer {token_for(store, user, roles=['store:admin'])}"}


def data_dir(store: RunningStore) -> Path:
    return store.log_dir
