"""Helpers for the catalog's API tests: settings on a tmp data folder, problem assertions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from libs.runtime.settings import RuntimeSettings
from services.catalog.settings import CatalogSettings
from tests.support.services import service_headers

PROBLEM = "application/problem+json"
TOKEN = "test-service-token-for-the-catalog-api"
ADMIN = service_headers(token=TOKEN)

MediaFiles = Callable[[], set[Path]]


def catalog_settings(tmp_path: Path, **changes: Any) -> CatalogSettings:
    """Embedded mode in `tmp_path` (migrated on start); not seeded unless `seed=True`."""
    runtime = RuntimeSettings(data_dir=tmp_path, service_token=TOKEN)
    return CatalogSettings(runtime=runtime, **{"seed": False, **changes})


def problem(
    response: httpx.Response, status: int, code: str, field: str | None = None
) -> dict[str, Any]:
    """Assert a problem+json answer; with `field`, that it names that field."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    if field is not None:
        assert field in [error["field"] for error in body.get("errors") or []], body
    return body
