"""Redis and PostgreSQL clients survive a real network cut: the first request after recovery
succeeds. A TCP proxy between the client and the server drops every connection on cue."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from chaos.proxy import TcpProxy
from gateway.identity import AnonymousCookie, MergedAnonymousIds, TokenVerifier
from gateway.rate_limits import RateLimits
from gateway.settings import GatewaySettings
from libs.runtime.db import create_engine
from libs.runtime.redis import create_redis
from libs.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.integration


async def test_redis_answers_a_command_sent_during_a_cut_once_it_is_back(redis_url: str) -> None:
    url = make_url(redis_url)
    async with TcpProxy(url.port or 6379) as proxy:
        client = create_redis(f"redis://127.0.0.1:{proxy.port}/{url.database or 0}")
        key = f"outage-test:{uuid.uuid4().hex}"
        try:
            await client.set(key, "kept", ex=60)
            await proxy.cut()  # every pooled connection is reset, and every new one
            during = asyncio.create_task(client.get(key))
            refused = asyncio.create_task(proxy.refusing.wait())
            # The command meets the cut at least once (or fails at once, which fails the test).
            await asyncio.wait({during, refused}, return_when=asyncio.FIRST_COMPLETED)
            refused.cancel()
            await proxy.restore()
            assert await during == b"kept"
            assert await client.get(key) == b"kept"
        finally:
            await client.delete(key)
            await client.aclose()


async def test_postgresql_answers_the_first_query_after_a_cut(pg_database_url: str) -> None:
    url = make_url(pg_database_url).set(drivername="postgresql+asyncpg")
    async with TcpProxy(url.port or 5432) as proxy:
        engine = create_engine(
            url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
            pool_size=2,
        )
        try:
            async with engine.connect() as connection:  # a pooled connection exists
                assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1
            await proxy.cut()
            await proxy.restore()
            async with engine.connect() as connection:
                assert (await connection.execute(text("SELECT 2"))).scalar_one() == 2
        finally:
            await engine.dispose()


async def test_the_gateway_rate_limits_count_again_once_redis_is_back(
    redis_url: str, tmp_path: Path
) -> None:
    url = make_url(redis_url)
    async with TcpProxy(url.port or 6379) as proxy:
        strong = "s" * 40
        settings = GatewaySettings(
            runtime=RuntimeSettings(
                data_dir=tmp_path,
                broker_url="amqp://guest:guest@127.0.0.1:5672/",
                redis_url=f"redis://127.0.0.1:{proxy.port}/{url.database or 0}",
                queue_prefix=f"outage-{uuid.uuid4().hex[:8]}",
                service_token=strong,
            ),
            jwt_secret=strong,
            cookie_secret=strong + "c",
            public_url="https://shop.example",
        )
        cookie = AnonymousCookie(settings)
        limits = RateLimits.from_settings(
            settings,
            verifier=TokenVerifier(settings),
            cookie=cookie,
            merged_ids=MergedAnonymousIds.for_cookie(None, cookie),
        )
        address = f"10.9.{uuid.uuid4().int % 250}.1"
        rule = limits.rules["sessions.address"]
        assert await limits.limiter.hit(rule.item, rule.name, rule.per, address)
        await proxy.cut()  # the pooled connection is reset
        during = asyncio.create_task(limits.limiter.hit(rule.item, rule.name, rule.per, address))
        refused = asyncio.create_task(proxy.refusing.wait())
        await asyncio.wait({during, refused}, return_when=asyncio.FIRST_COMPLETED)
        refused.cancel()
        await proxy.restore()
        # The hit sent during the cut is counted once Redis is back, not answered with an error.
        assert await during is True
        stats = await limits.limiter.get_window_stats(rule.item, rule.name, rule.per, address)
        assert stats.remaining == rule.item.amount - 2
