"""Readiness means "can serve requests": a broker outage degrades, a database outage does not."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter
from sqlalchemy import func, select

from libs.contracts.events import AnonymousMerged
from libs.runtime.app import create_service_app
from libs.runtime.runtime import Runtime
from libs.runtime.settings import RuntimeSettings
from tests.support.services import service_headers
from tests.unit.runtime.test_outbox_and_bus import make_runtime


def probe_app(runtime: Runtime):
    router = APIRouter()

    @router.post("/merge")
    async def merge() -> dict[str, str]:
        async with runtime.transaction() as session:
            await runtime.record(session, AnonymousMerged(anonymous_id="a", user_id="u"))
        return {"status": "recorded"}

    return create_service_app(runtime=runtime, title="probe", routers=[router])


@pytest.fixture
async def served(tmp_path: Path):
    from libs.runtime.runtime import shared_for

    runtime, _ = make_runtime(tmp_path, "probe", shared_for(RuntimeSettings(data_dir=tmp_path)))
    async with runtime.engine.begin() as connection:
        await connection.run_sync(runtime.metadata.create_all)
    app = probe_app(runtime)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://probe",
            headers=service_headers(),
        ) as client:
            yield runtime, client


async def test_a_broker_outage_degrades_while_requests_are_served(served, monkeypatch) -> None:
    runtime, client = served
    await runtime.relay.stop()  # keep what the request records in the outbox

    async def away() -> bool:
        return False

    monkeypatch.setattr(runtime.bus, "ping", away)

    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded" and ready.json()["degraded"] == ["broker"]
    assert 'store_broker_up{service="probe"} 0.0' in (await client.get("/metrics")).text

    assert (await client.post("/merge")).status_code == 200
    async with runtime.sessions() as session:
        kept = select(func.count()).where(runtime.outbox.c.published_at.is_(None))
        assert (await session.execute(kept)).scalar_one() == 1


async def test_ready_when_everything_answers_unavailable_without_the_database(
    served, monkeypatch
) -> None:
    runtime, client = served
    ready = await client.get("/readyz")
    assert (ready.status_code, ready.json()["status"]) == (200, "ready")
    assert 'store_broker_up{service="probe"} 1.0' in (await client.get("/metrics")).text

    async def down() -> bool:
        raise ConnectionError("database away")

    monkeypatch.setattr(runtime, "_ping_database", down)
    unready = await client.get("/readyz")
    assert (unready.status_code, unready.json()["status"]) == (503, "unavailable")
