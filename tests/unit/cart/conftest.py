from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.cart.bootstrap import CartDeps
from services.cart.service import CartService
from tests.unit.cart.builders import cart_settings, running_cart
from tests.unit.cart.fakes import FakeCatalog


@pytest.fixture
def catalog() -> FakeCatalog:
    return FakeCatalog()


@pytest.fixture
async def deps(tmp_path: Path, catalog: FakeCatalog) -> AsyncIterator[CartDeps]:
    async with running_cart(cart_settings(tmp_path), catalog) as deps:
        yield deps


@pytest.fixture
def service(deps: CartDeps) -> CartService:
    return deps.service
