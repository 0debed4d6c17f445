"""Builders for cart tests: a started cart service on SQLite/fakeredis or on real servers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select

from libs.contracts.common import Principal
from libs.contracts.envelope import Envelope
from libs.runtime.runtime import Shared, shared_for
from libs.runtime.settings import RuntimeSettings
from services.cart.bootstrap import CartDeps, build_deps
from services.cart.settings import CartSettings
from tests.support.services import TEST_SERVICE_TOKEN
from tests.unit.cart.fakes import FakeCatalog


def anonymous() -> Principal:
    return Principal(anonymous_id=f"anon-{uuid.uuid4().hex}")


def user() -> Principal:
    return Principal(user_id=f"user-{uuid.uuid4().hex}")


def cart_settings(
    tmp_path: Path,
    *,
    database_url: str | None = None,
    redis_url: str = "memory://",
    broker_url: str = "memory://",
    **overrides: Any,
) -> CartSettings:
    runtime = RuntimeSettings(
        data_dir=tmp_path,
        redis_url=redis_url,
        broker_url=broker_url,
        outbox_poll_interval_ms=20,
        **{"service_token": TEST_SERVICE_TOKEN, **overrides.pop("runtime", {})},
    )
    overrides.setdefault("redis_prefix", f"test:cart:{uuid.uuid4().hex[:10]}")
    return CartSettings(runtime=runtime, database_url=database_url, **overrides)


@asynccontextmanager
async def running_cart(
    settings: CartSettings, catalog: FakeCatalog, *, shared: Shared | None = None
) -> AsyncIterator[CartDeps]:
    """A started cart service whose catalog is `catalog`; migrates its database first."""
    from libs.runtime.migrations import upgrade

    shared = shared or shared_for(settings.runtime)
    deps = build_deps(settings, shared, pricing=catalog)
    await upgrade(deps.runtime.engine, deps.runtime.migrations_dir)
    if not settings.runtime.embedded:
        # Connect (and bind the cart's queue) now, so that nothing published is missed.
        await deps.runtime.bus.start()
    await deps.runtime.start()
    try:
        yield deps
    finally:
        redis = deps.runtime.redis
        if not settings.runtime.redis_url.startswith("memory://"):
            keys = [key async for key in redis.scan_iter(match=f"{settings.redis_prefix}:*")]
            if keys:
                await redis.delete(*keys)
        await deps.runtime.stop()


async def published(deps: CartDeps, event_type: str | None = None) -> list[Envelope]:
    """Events the cart wrote to its outbox, oldest first."""
    outbox = deps.runtime.outbox
    query = select(outbox.c.envelope).order_by(outbox.c.id)
    async with deps.runtime.sessions() as session:
        rows = (await session.execute(query)).scalars().all()
    envelopes = [Envelope.model_validate(row) for row in rows]
    return [e for e in envelopes if event_type is None or e.type == event_type]
