"""Idempotency keys at the gateway: replay, refusal of another body, in flight, failures."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import fakeredis
import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel

from gateway.deps import current_caller
from gateway.idempotency import Idempotent, install_idempotency
from gateway.identity import Caller
from libs.runtime.problems import ServiceUnavailable, install_problem_handlers
from tests.api.payments.test_customers import problem


class Line(BaseModel):
    pricing_id: str
    quantity: int


@dataclass
class Counter:
    """What the route under the key did: how often it ran, with a gate to hold it in flight."""

    runs: int = 0
    quantities: dict[str, int] = field(default_factory=dict)
    gate: asyncio.Event | None = None
    failures: int = 0


def build_app(counter: Counter) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    install_idempotency(
        app, redis=fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer()), ttl_s=3600, lock_s=60
    )

    def caller_from(request: Request) -> Caller:
        # The test names the caller directly; the gateway verifies tokens and cookies.
        return Caller(user_id=request.headers.get("x-test-user"))

    app.dependency_overrides[current_caller] = caller_from

    @app.post("/lines", dependencies=[Idempotent])
    async def add_line(body: Line) -> dict[str, Any]:
        counter.runs += 1
        if counter.gate is not None:
            await counter.gate.wait()
        if counter.failures:
            counter.failures -= 1
            raise ServiceUnavailable("The cart is unavailable.")
        counter.quantities[body.pricing_id] = counter.quantities.get(body.pricing_id, 0) + (
            body.quantity
        )
        return {"quantities": counter.quantities, "run": counter.runs}

    return app


@pytest.fixture
async def setup() -> AsyncIterator[tuple[httpx.AsyncClient, Counter]]:
    counter = Counter()
    app = build_app(counter)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http, counter


def as_user(user: str, key: str | None = None) -> dict[str, str]:
    headers = {"x-test-user": user}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


async def test_a_retry_with_the_same_key_returns_the_first_response_and_runs_once(
    setup: tuple[httpx.AsyncClient, Counter],
) -> None:
    http, counter = setup
    key = str(uuid.uuid4())
    body = {"pricing_id": "p1", "quantity": 2}
    first = await http.post("/lines", json=body, headers=as_user("alice", key))
    again = await http.post("/lines", json=body, headers=as_user("alice", key))
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() == {"quantities": {"p1": 2}, "run": 1}
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert counter.runs == 1 and counter.quantities == {"p1": 2}


async def test_keys_belong_to_their_caller(setup: tuple[httpx.AsyncClient, Counter]) -> None:
    http, counter = setup
    body = {"pricing_id": "p1", "quantity": 1}
    await http.post("/lines", json=body, headers=as_user("alice", "same-key"))
    bob = await http.post("/lines", json=body, headers=as_user("bob", "same-key"))
    assert "idempotent-replayed" not in bob.headers and counter.runs == 2


async def test_the_same_key_with_another_body_is_refused_and_changes_nothing(
    setup: tuple[httpx.AsyncClient, Counter],
) -> None:
    http, counter = setup
    key = str(uuid.uuid4())
    await http.post("/lines", json={"pricing_id": "p1", "quantity": 1}, headers=as_user("a", key))
    other = await http.post(
        "/lines", json={"pricing_id": "p1", "quantity": 5}, headers=as_user("a", key)
    )
    problem(other, 422, "idempotency_key_reused")
    assert counter.runs == 1 and counter.quantities == {"p1": 1}


async def test_a_retry_while_the_first_runs_is_409_then_replays(
    setup: tuple[httpx.AsyncClient, Counter],
) -> None:
    http, counter = setup
    counter.gate = asyncio.Event()
    key = str(uuid.uuid4())
    body = {"pricing_id": "p1", "quantity": 1}
    first = asyncio.create_task(http.post("/lines", json=body, headers=as_user("a", key)))
    for _ in range(200):  # bounded: until the first request is inside the route
        if counter.runs:
            break
        await asyncio.sleep(0.005)
    problem(
        await http.post("/lines", json=body, headers=as_user("a", key)),
        409,
        "idempotency_key_in_use",
    )
    counter.gate.set()
    assert (await first).status_code == 200
    replay = await http.post("/lines", json=body, headers=as_user("a", key))
    assert replay.headers["idempotent-replayed"] == "true" and counter.runs == 1


async def test_a_failed_request_frees_its_key_for_the_retry(
    setup: tuple[httpx.AsyncClient, Counter],
) -> None:
    http, counter = setup
    counter.failures = 1
    key = str(uuid.uuid4())
    body = {"pricing_id": "p1", "quantity": 1}
    problem(await http.post("/lines", json=body, headers=as_user("a", key)), 503)
    retried = await http.post("/lines", json=body, headers=as_user("a", key))
    assert retried.status_code == 200 and "idempotent-replayed" not in retried.headers
    assert counter.quantities == {"p1": 1}


async def test_without_a_key_or_an_identity_every_request_runs(
    setup: tuple[httpx.AsyncClient, Counter],
) -> None:
    http, counter = setup
    body = {"pricing_id": "p1", "quantity": 1}
    await http.post("/lines", json=body, headers=as_user("a"))
    await http.post("/lines", json=body, headers=as_user("a"))
    await http.post("/lines", json=body, headers={"Idempotency-Key": "k"})
    await http.post("/lines", json=body, headers={"Idempotency-Key": "k"})
    assert counter.runs == 4


async def test_a_malformed_key_is_refused(setup: tuple[httpx.AsyncClient, Counter]) -> None:
    http, counter = setup
    body = {"pricing_id": "p1", "quantity": 1}
    problem(await http.post("/lines", json=body, headers=as_user("a", "x" * 256)), 422)
    assert counter.runs == 0


def test_the_store_api_documents_the_header_on_each_retryable_post() -> None:
    from gateway.app import create_app
    from gateway.settings import GatewaySettings
    from libs.runtime.settings import RuntimeSettings

    document = create_app(GatewaySettings(runtime=RuntimeSettings())).openapi()
    documented = {
        path
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if any(
            p["in"] == "header" and p["name"] == "Idempotency-Key"
            for p in operation.get("parameters", [])
        )
    }
    assert documented == {
        "/api/store/cart/lines",
        "/api/store/checkout",
        "/api/store/orders/{order_id}/pay",
        "/api/payments/billing",
    }


async def test_a_refused_body_does_not_use_up_the_key(
    setup: tuple[httpx.AsyncClient, Counter],
) -> None:
    http, counter = setup
    key = str(uuid.uuid4())
    problem(await http.post("/lines", json={"pricing_id": "p1"}, headers=as_user("a", key)), 422)
    fixed = await http.post(
        "/lines", json={"pricing_id": "p1", "quantity": 1}, headers=as_user("a", key)
    )
    assert fixed.status_code == 200 and counter.quantities == {"p1": 1}
