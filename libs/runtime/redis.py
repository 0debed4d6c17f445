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

    return redis.from_url(url, **resilient_options())


def resilient_options() -> dict[str, Any]:
    """Client options that outlive an outage, for every Redis client of the store.

    A command whose connection was cut is retried on a fresh connection with backoff: a blip
    of up to about two seconds costs latency, not an error, and the first request after a
    longer outage succeeds. Past the retries the caller answers 503.
    """
    from redis.asyncio.retry import Retry
    from redis.backoff import EqualJitterBackoff
    from redis.exceptions import ConnectionError, TimeoutError

    return {
        "retry": Retry(EqualJitterBackoff(cap=1.0, base=0.1), retries=5),
        "retry_on_error": [ConnectionError, TimeoutError],
        "health_check_interval": 10,
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
        "max_connections": 200,
    }
