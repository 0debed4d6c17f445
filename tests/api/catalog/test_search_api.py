"""The product search on SQLite (the embedded mode's FTS5 adapter): the shared cases."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from services.catalog.app import create_app
from tests.api.catalog.search_cases import CASES, Case
from tests.api.catalog.support import ADMIN, catalog_settings

# The cases make their own products under random names: they share one seeded app.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def catalog(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    app = create_app(catalog_settings(tmp_path_factory.mktemp("search"), seed=True))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://catalog", headers=ADMIN
        ) as client:
            yield client, app


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
async def test_search_on_sqlite(case: Case, catalog: tuple[httpx.AsyncClient, FastAPI]) -> None:
    await case(*catalog)
