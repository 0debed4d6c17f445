"""Redis client: a real server in distributed mode, an in-process substitute in embedded mode."""

from __future__ import annotations

from typing import Any

from libs.runtime.settings import MEMORY_URL


def create_redis(url: str, *, fake_server: Any = None) -> Any:
    """A `redis.asyncio.Redis` for the URL; `memory://` gives fakeredis on `fake_server`."""
    if url == MEMORY_URL:
        import fakeredis

        return fakeredis.FakeAsyncRedis(server=fake_server or fakeredis.FakeServer())
    import redis.asyncio as redis

    return redis.from_url(
        url,
        health_check_interval=30,
        socket_connect_timeout=2,
        socket_timeout=5,
        max_connections=200,
    )
