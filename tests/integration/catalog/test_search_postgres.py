"""The product search on real PostgreSQL (tsvector per locale, pg_trgm): the same cases as on
SQLite (tests/api/catalog/search_cases.py), plus what only PostgreSQL has."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from libs.runtime.settings import RuntimeSettings
from services.catalog.app import create_app
from services.catalog.settings import CatalogSettings
from tests.api.catalog.search_cases import CASES, Case, found
from tests.api.catalog.support import ADMIN, TOKEN

pytestmark = pytest.mark.integration


@pytest.fixture
async def catalog(
    tmp_path: Path, pg_database_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    settings = CatalogSettings(
        runtime=RuntimeSettings(data_dir=tmp_path, broker_url="memory://", service_token=TOKEN),
        database_url=pg_database_url,
        seed=True,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://catalog", headers=ADMIN
        ) as client:
            yield client, app


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
async def test_search_on_postgresql(case: Case, catalog: tuple[httpx.AsyncClient, FastAPI]) -> None:
    await case(*catalog)


async def test_each_locale_is_stemmed_by_its_own_configuration(
    catalog: tuple[httpx.AsyncClient, FastAPI],
) -> None:
    client, app = catalog
    async with app.state.deps.runtime.engine.connect() as connection:
        vectors = dict(
            (
                await connection.execute(
                    text(
                        "SELECT t.locale, t.search_vector::text FROM product_translations t"
                        " JOIN products p ON p.id = t.product_id WHERE p.key = 'mug'"
                    )
                )
            ).all()
        )
    assert "'tass'" in vectors["de"]  # german: Tasse → tass
    assert "'dishwash'" in vectors["en"]  # english: dishwasher → dishwash
    # Trigram similarity takes a missing letter the words alone would not.
    assert (await found(client, q="stonware"))[0]["key"] == "mug"


async def test_the_text_and_trigram_matches_can_use_their_gin_indexes(
    catalog: tuple[httpx.AsyncClient, FastAPI],
) -> None:
    _, app = catalog
    async with app.state.deps.runtime.engine.connect() as connection:
        # A handful of rows is cheaper to scan: forbid it, to see that the index fits.
        await connection.execute(text("SET enable_seqscan = off"))

        async def plan(where: str) -> str:
            query = f"EXPLAIN SELECT product_id FROM product_translations WHERE {where}"
            return "\n".join(row[0] for row in (await connection.execute(text(query))).all())

        words = await plan("search_vector @@ to_tsquery('german'::regconfig, 'tasse:*')")
        assert "ix_product_translations_search" in words
        typos = await plan("'mgu' % name OR 'mgu' <% name")
        assert "ix_product_translations_name_trgm" in typos
