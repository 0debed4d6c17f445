"""Fixtures for real backing services.

A service URL comes from the environment first (STORE_TEST_POSTGRES_URL, STORE_TEST_REDIS_URL,
STORE_TEST_AMQP_URL), then from a server already listening on its default local port
(PostgreSQL as `postgres` on 5432, Redis on 6379, RabbitMQ as guest on 5672; STORE_TEST_LOCAL=0
turns that off), then from testcontainers where Docker works, with the images docker-compose.yml
names (POSTGRES_IMAGE, REDIS_IMAGE, RABBITMQ_IMAGE, so local stand-ins work too) and Ryuk off;
otherwise the test is skipped with the reason — unless STORE_TEST_REQUIRE_SERVICES=1 (as in CI),
where a missing service fails the run.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REQUIRE_SERVICES = os.environ.get("STORE_TEST_REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (STORE_TEST_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), 1):
            return True
    except OSError:
        return False


# The servers a developer may already run, at their default local addresses.
LOCAL_DEFAULTS = {
    "STORE_TEST_POSTGRES_URL": "postgresql://postgres@127.0.0.1:5432/postgres",
    "STORE_TEST_REDIS_URL": "redis://127.0.0.1:6379/0",
    "STORE_TEST_AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/",
}


def compose_image(variable: str, default: str) -> str:
    """The image docker-compose.yml runs for a backing service (same variable, same default)."""
    return os.environ.get(variable) or default


def _from_env_or_container(env: str, container_factory: object, kind: str) -> Iterator[str]:
    url = os.environ.get(env)
    if url:
        if not _reachable(url):
            unavailable(f"{kind} at {env}={url} is not reachable")
        yield url
        return
    local = LOCAL_DEFAULTS[env]
    if os.environ.get("STORE_TEST_LOCAL") != "0" and _reachable(local):
        yield local
        return
    # No reaper container: it would need an image of its own; every container is stopped below.
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    try:
        container = container_factory()  # type: ignore[operator]
        container.start()
    except Exception as exc:
        unavailable(
            f"{kind}: set {env}, or run Docker for testcontainers ({exc.__class__.__name__})"
        )
        return
    try:
        yield container.url  # set by the factory wrappers below
    finally:
        container.stop()


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A PostgreSQL server URL (libpq form) whose user may create databases."""

    def factory() -> object:
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer(compose_image("POSTGRES_IMAGE", "postgres:16"), driver=None)
        original_start = container.start

        def start() -> object:
            original_start()
            container.url = container.get_connection_url()  # type: ignore[attr-defined]
            return container

        container.start = start  # type: ignore[method-assign]
        return container

    yield from _from_env_or_container("STORE_TEST_POSTGRES_URL", factory, "PostgreSQL")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    def factory() -> object:
        from testcontainers.redis import RedisContainer

        container = RedisContainer(compose_image("REDIS_IMAGE", "redis:7"))
        original_start = container.start

        def start() -> object:
            original_start()
            host, port = container.get_container_host_ip(), container.get_exposed_port(6379)
            container.url = f"redis://{host}:{port}/0"  # type: ignore[attr-defined]
            return container

        container.start = start  # type: ignore[method-assign]
        return container

    yield from _from_env_or_container("STORE_TEST_REDIS_URL", factory, "Redis")


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    def factory() -> object:
        from testcontainers.rabbitmq import RabbitMqContainer

        container = RabbitMqContainer(compose_image("RABBITMQ_IMAGE", "rabbitmq:3.13-management"))
        original_start = container.start

        def start() -> object:
            original_start()
            host, port = container.get_container_host_ip(), container.get_exposed_port(5672)
            container.url = f"amqp://guest:guest@{host}:{port}/"  # type: ignore[attr-defined]
            return container

        container.start = start  # type: ignore[method-assign]
        return container

    yield from _from_env_or_container("STORE_TEST_AMQP_URL", factory, "RabbitMQ")


async def create_database(server_url: str, prefix: str = "store_test") -> str:
    """Create a fresh, uniquely named database; returns its SQLAlchemy asyncpg URL."""
    import asyncpg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    parts = urlsplit(server_url)
    return f"postgresql+asyncpg://{parts.netloc}/{name}"


async def drop_database(server_url: str, database_url: str) -> None:
    import asyncpg

    name = urlsplit(database_url).path.lstrip("/")
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def pg_database_url(postgres_server_url: str) -> AsyncIterator[str]:
    """A fresh empty PostgreSQL database for one test, dropped afterwards."""
    url = await create_database(postgres_server_url)
    yield url
    await drop_database(postgres_server_url, url)


@dataclass(frozen=True)
class BusNames:
    """A uniquely named exchange and queue prefix, so runs never see each other's messages."""

    url: str
    exchange: str
    queue_prefix: str


@pytest.fixture
async def bus_names(amqp_url: str) -> AsyncIterator[BusNames]:
    token = uuid.uuid4().hex[:10]
    names = BusNames(amqp_url, f"store.test.{token}", f"test.{token}")
    yield names
    await delete_bus_names(names)


async def delete_bus_names(names: BusNames) -> None:
    """Remove the exchange and every queue a test declared under its prefix."""
    from tests.support.cluster import SERVICES, delete_bus

    await delete_bus(
        names.url,
        names.exchange,
        names.queue_prefix,
        (*SERVICES, "notifications", "probe", "consumer", "external"),
    )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# Everything that drives the system through the gateway, in both modes: `-m e2e` selects it
# (a conftest's `pytestmark` marks nothing, so the marker is added here).
_E2E_DIRS = tuple(Path(__file__).parent / name for name in ("e2e", "security"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(directory in Path(str(item.path)).parents for directory in _E2E_DIRS):
            item.add_marker(pytest.mark.e2e)
