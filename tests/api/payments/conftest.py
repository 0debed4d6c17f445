"""The payments app under httpx, with its lifespan, on SQLite in a temporary folder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from libs.contracts.common import Principal
from services.payments.app import create_app
from services.payments.bootstrap import PaymentsDeps, build_deps
from tests.support.services import service_headers
from tests.unit.payments.builders import FakeClock, billing, headers, settings_for, user


@dataclass
class PaymentsApi:
    app: FastAPI
    http: httpx.AsyncClient
    deps: PaymentsDeps
    clock: FakeClock

    async def create_customer(
        self, principal: Principal | None = None, **overrides: Any
    ) -> dict[str, Any]:
        response = await self.http.post(
            "/customers", json=billing(**overrides), headers=headers(principal or user())
        )
        assert response.status_code == 201, response.text
        return dict(response.json())


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[PaymentsApi]:
    clock = FakeClock(tick=timedelta(milliseconds=1))
    settings = settings_for(tmp_path, public_url="http://shop.test:8000/")
    deps = build_deps(settings, clock=clock)
    app = create_app(deps=deps)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        # The gateway's view: every request carries the service credential.
        async with httpx.AsyncClient(
            transport=transport, base_url="http://payments", headers=service_headers()
        ) as http:
            yield PaymentsApi(app=app, http=http, deps=deps, clock=clock)
