"""Problem responses for every kind of failure, and the event envelope."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field, ValidationError

from libs.contracts.envelope import Envelope, UnknownEventType
from libs.contracts.events import OrderPaid
from libs.runtime.problems import (
    Conflict,
    InvalidInput,
    ServiceUnavailable,
    install_problem_handlers,
)


class Body(BaseModel):
    quantity: int = Field(ge=1)


def problem_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/validate")
    async def validate(body: Body) -> dict[str, int]:
        return {"quantity": body.quantity}

    @app.get("/conflict")
    async def conflict() -> None:
        raise Conflict("The cart holds EUR.", code="currency_mismatch")

    @app.get("/field")
    async def field() -> None:
        raise InvalidInput.for_field("currency", "unknown currency 'XYZ'", code="unknown_currency")

    @app.get("/database-down")
    async def database_down() -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    @app.get("/too-many-clients")
    async def too_many_clients() -> None:
        class TooManyConnectionsError(Exception):
            sqlstate = "53300"

        try:
            raise TooManyConnectionsError("sorry, too many clients already")
        except TooManyConnectionsError as exc:
            raise RuntimeError("(DBAPIError) wrapped") from exc

    @app.get("/unavailable")
    async def unavailable() -> None:
        raise ServiceUnavailable("catalog is unavailable")

    @app.get("/nul")
    async def nul() -> None:
        class CharacterNotInRepertoireError(Exception):
            sqlstate = "22021"

        try:
            raise CharacterNotInRepertoireError('invalid byte sequence for encoding "UTF8": 0x00')
        except CharacterNotInRepertoireError as exc:
            raise RuntimeError("(DBAPIError) wrapped") from exc

    @app.get("/bug")
    async def bug() -> None:
        raise KeyError("secret internal detail")

    return app


@pytest.fixture
async def client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=problem_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http  # type: ignore[misc]


def body_of(response: httpx.Response) -> dict[str, object]:
    assert response.headers["content-type"] == "application/problem+json"
    data = response.json()
    assert {"type", "title", "status", "code"} <= data.keys()
    assert data["status"] == response.status_code
    return data  # type: ignore[no-any-return]


async def test_validation_errors_name_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/validate", json={"quantity": 0})
    assert response.status_code == 422
    data = body_of(response)
    assert data["code"] == "validation_error"
    assert data["errors"][0]["field"] == "quantity"  # type: ignore[index]


async def test_malformed_json_is_a_422_not_a_500(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/validate", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422 and body_of(response)["code"] == "validation_error"


async def test_domain_errors_keep_their_code(client: httpx.AsyncClient) -> None:
    response = await client.get("/conflict")
    assert response.status_code == 409
    assert body_of(response)["code"] == "currency_mismatch"
    field = body_of(await client.get("/field"))
    assert field["errors"] == [{"field": "currency", "message": "unknown currency 'XYZ'"}]


async def test_unknown_route_and_method(client: httpx.AsyncClient) -> None:
    assert body_of(await client.get("/nowhere"))["code"] == "not_found"
    assert body_of(await client.get("/validate"))["code"] == "method_not_allowed"


async def test_a_dependency_down_is_a_503(client: httpx.AsyncClient) -> None:
    response = await client.get("/database-down")
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert body_of(response)["code"] == "service_unavailable"
    assert (await client.get("/unavailable")).status_code == 503
    assert (await client.get("/too-many-clients")).status_code == 503


async def test_a_value_the_database_refuses_is_the_callers_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/nul")
    assert response.status_code == 422
    assert body_of(response)["code"] == "invalid_characters"


async def test_a_bug_is_a_500_problem_without_internals(client: httpx.AsyncClient) -> None:
    response = await client.get("/bug")
    assert response.status_code == 500
    assert "secret internal detail" not in response.text
    assert body_of(response)["code"] == "internal_error"


def test_envelope_round_trip_keeps_everything() -> None:
    from datetime import UTC, datetime

    payload = OrderPaid(
        order_id="o1",
        number="2026-000001",
        owner={"kind": "user", "id": "u1"},  # type: ignore[arg-type]
        currency="EUR",
        total=1999,
        paid_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    envelope = Envelope.wrap(payload, producer="orders", correlation_id="c-1")
    again = Envelope.from_bytes(envelope.to_bytes())
    assert again == envelope
    assert again.type == "orders.order.paid.v1" and again.producer == "orders"
    assert again.parse_payload() == payload


def test_envelope_tolerates_unknown_fields_and_refuses_bad_types() -> None:
    body = Envelope.wrap(
        OrderPaid(
            order_id="o",
            number="n",
            owner={"kind": "user", "id": "u"},  # type: ignore[arg-type]
            currency="EUR",
            total=1,
            paid_at="2026-01-01T00:00:00Z",  # type: ignore[arg-type]
        ),
        producer="orders",
    ).model_dump(mode="json")
    body["added_later"] = True
    body["payload"]["also_added_later"] = 1
    assert Envelope.model_validate(body).parse_payload().order_id == "o"  # type: ignore[attr-defined]
    with pytest.raises(ValidationError):
        Envelope.model_validate({**body, "type": "Not A Type"})
    with pytest.raises(UnknownEventType):
        Envelope.model_validate({**body, "type": "orders.order.vanished.v9"}).parse_payload()
    assert Envelope.model_validate(body).event_id != uuid.uuid4()
