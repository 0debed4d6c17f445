"""A catalog on a fresh SQLite file, with the in-process bus, per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from libs.runtime.runtime import shared_for
from libs.runtime.settings import RuntimeSettings
from services.catalog.bootstrap import CatalogDeps, build_deps
from services.catalog.settings import CatalogSettings


@pytest.fixture
def catalog_settings(tmp_path: Path) -> CatalogSettings:
    return CatalogSettings(
        runtime=RuntimeSettings(data_dir=tmp_path),
        seed=False,
    )


@pytest.fixture
async def catalog(catalog_settings: CatalogSettings) -> AsyncIterator[CatalogDeps]:
    """Migrated, started (bus and relay running), stopped afterwards."""
    deps = build_deps(catalog_settings, shared_for(catalog_settings.runtime))
    await deps.runtime.start()
    try:
        yield deps
    finally:
        await deps.runtime.stop()
