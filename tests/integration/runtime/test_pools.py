"""Database connections: the pools of every replica of every service fit the store's share of
PostgreSQL's connections, and an exhausted pool fails fast (answered 503) instead of hanging."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import MetaData, text

from libs.runtime.problems import is_unavailable_error
from libs.runtime.runtime import Runtime, Shared, shared_for
from libs.runtime.settings import RuntimeSettings
from services.cart.settings import CartSettings
from services.cart.tables import metadata as cart_metadata
from services.catalog.settings import CatalogSettings
from services.catalog.tables import metadata as catalog_metadata
from services.orders.settings import OrdersSettings
from services.orders.tables import metadata as orders_metadata
from services.payments.settings import PaymentsSettings
from services.payments.tables import metadata as payments_metadata

pytestmark = pytest.mark.integration

SERVICES: dict[str, tuple[type, MetaData]] = {
    "catalog": (CatalogSettings, catalog_metadata),
    "cart": (CartSettings, cart_metadata),
    "orders": (OrdersSettings, orders_metadata),
    "payments": (PaymentsSettings, payments_metadata),
}
REPLICAS = 2
POOL = 2
# The store's share of the server: a role whose connection limit stands for `max_connections`
# minus what other stores on the same server take (as docs/operations.md sizes it).
SHARE = len(SERVICES) * REPLICAS * POOL


@contextlib.asynccontextmanager
async def store_role(server_url: str, limit: int) -> AsyncIterator[dict[str, str]]:
    """A role allowed `limit` connections, owning one fresh database per service."""
    import asyncpg

    token = uuid.uuid4().hex[:10]
    role = f"store_pool_{token}"
    admin = await asyncpg.connect(server_url)
    urls: dict[str, str] = {}
    host = urlsplit(server_url).netloc.rsplit("@", 1)[-1]
    try:
        await admin.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT {limit}')
        for service in SERVICES:
            name = f"{role}_{service}"
            await admin.execute(f'CREATE DATABASE "{name}" OWNER "{role}"')
            urls[service] = f"postgresql+asyncpg://{role}@{host}/{name}"
        yield urls
    finally:
        for service in SERVICES:
            await admin.execute(f'DROP DATABASE IF EXISTS "{role}_{service}" WITH (FORCE)')
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()


def replica(service: str, url: str, tmp_path: Path, shared: Shared, pool: int) -> Runtime:
    settings_class, metadata = SERVICES[service]
    runtime_settings = RuntimeSettings(data_dir=tmp_path)
    settings = settings_class(database_url=url, database_pool_size=pool, runtime=runtime_settings)
    return Runtime.for_service(
        name=service,
        settings=settings,
        metadata=metadata,
        migrations_dir=tmp_path,
        shared=shared,
    )


async def connections_of(server_url: str, role: str) -> int:
    import asyncpg

    admin = await asyncpg.connect(server_url)
    try:
        return int(
            await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE usename = $1", role)
        )
    finally:
        await admin.close()


async def test_two_replicas_of_every_service_stay_within_the_stores_connection_share(
    postgres_server_url: str, tmp_path: Path
) -> None:
    async with store_role(postgres_server_url, SHARE) as urls:
        shared = shared_for(RuntimeSettings(data_dir=tmp_path))
        replicas = [
            replica(service, urls[service], tmp_path, shared, POOL)
            for service in SERVICES
            for _ in range(REPLICAS)
        ]
        role = urlsplit(next(iter(urls.values()))).username
        assert role
        peak = 0
        try:

            async def busy(runtime: Runtime) -> int:
                async with runtime.transaction() as session:
                    await session.execute(text("SELECT pg_sleep(0.02)"))
                return 1

            async def watch() -> None:
                nonlocal peak
                for _ in range(200):
                    peak = max(peak, await connections_of(postgres_server_url, role))
                    await asyncio.sleep(0.01)

            watcher = asyncio.create_task(watch())
            # Far more concurrent work than connections: every replica queues on its own pool.
            done = await asyncio.gather(
                *(busy(runtime) for runtime in replicas for _ in range(25)),
                return_exceptions=True,
            )
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            errors = [outcome for outcome in done if isinstance(outcome, BaseException)]
            assert errors == []
            assert sum(done) == len(replicas) * 25  # type: ignore[arg-type]
            assert 0 < peak <= SHARE
        finally:
            for runtime in replicas:
                await runtime.engine.dispose()


async def test_an_exhausted_pool_fails_as_unavailable_before_the_callers_timeout(
    pg_database_url: str, tmp_path: Path
) -> None:
    settings = RuntimeSettings(data_dir=tmp_path, db_pool_timeout_s=0.5, http_timeout_s=5)
    shared = shared_for(settings)
    cart_settings = CartSettings(
        database_url=pg_database_url, database_pool_size=1, runtime=settings
    )
    runtime = Runtime.for_service(
        name="cart",
        settings=cart_settings,
        metadata=cart_metadata,
        migrations_dir=tmp_path,
        shared=shared,
    )
    try:
        async with runtime.engine.connect() as held:  # the only pooled connection
            await held.execute(text("SELECT 1"))
            started = time.monotonic()
            with pytest.raises(Exception) as failure:
                async with runtime.transaction() as session:
                    await session.execute(text("SELECT 1"))
            waited = time.monotonic() - started
        # Every app answers an unavailable dependency 503; the wait is the configured one,
        # well inside the caller's timeout, not the driver's default of 30 s.
        assert is_unavailable_error(failure.value)
        assert waited < settings.http_timeout_s
        async with runtime.transaction() as session:  # released: served again
            assert (await session.execute(text("SELECT 2"))).scalar_one() == 2
    finally:
        await runtime.engine.dispose()


def test_the_pool_wait_stays_within_half_the_call_timeout() -> None:
    assert RuntimeSettings(db_pool_timeout_s=1, http_timeout_s=5).pool_wait_s == 1
    assert RuntimeSettings(db_pool_timeout_s=5, http_timeout_s=2).pool_wait_s == 1
