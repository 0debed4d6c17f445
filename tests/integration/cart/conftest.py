from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from services.cart.bootstrap import CartDeps
from tests.unit.cart.builders import cart_settings, running_cart
from tests.unit.cart.fakes import FakeCatalog


@pytest.fixture
def catalog() -> FakeCatalog:
    return FakeCatalog()


@pytest.fixture
def real_cart(
    tmp_path: Path, pg_database_url: str, redis_url: str, catalog: FakeCatalog
) -> Callable[..., AbstractAsyncContextManager[CartDeps]]:
    """A cart service on the real PostgreSQL and Redis (settings may be overridden)."""

    def start(**overrides: Any) -> AbstractAsyncContextManager[CartDeps]:
        settings = cart_settings(
            tmp_path, database_url=pg_database_url, redis_url=redis_url, **overrides
        )
        return running_cart(settings, catalog)

    return start


@pytest.fixture
async def deps(real_cart) -> AsyncIterator[CartDeps]:
    # The races queue up to 100 transactions on one cart row behind a pool of 10: what they
    # test is the outcome, not the 2 s a request waits for a connection before its 503, which
    # a busy machine can exceed while the queue drains (the pool's 503 is tested on its own).
    runtime = {"db_pool_timeout_s": 30.0, "http_timeout_s": 60.0}
    async with real_cart(max_quantity_per_line=1000, runtime=runtime) as deps:
        yield deps
