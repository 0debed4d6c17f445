"""The orders app over HTTP, as the gateway calls it: SQLite, in-process bus, a fake catalog."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from libs.contracts.common import PRINCIPAL_HEADER, Owner, Principal
from libs.contracts.envelope import Envelope
from libs.contracts.events import PaymentSucceeded
from libs.contracts.orders import OrderDetails, PrepareOrderIn
from libs.runtime.http import SERVICE_TOKEN_HEADER
from libs.runtime.runtime import Shared, shared_for
from libs.runtime.settings import RuntimeSettings
from services.orders.app import create_app
from services.orders.bootstrap import build_deps
from services.orders.settings import OrdersSettings
from tests.support.services import service_headers
from tests.unit.orders.support import (
    FakeCatalog,
    SteppingClock,
    anonymous,
    prepare_in,
    principal_of,
    refund_failed,
    refund_succeeded,
    user,
)

TOKEN = service_headers()


@dataclass
class Api:
    http: httpx.AsyncClient
    catalog: FakeCatalog
    shared: Shared

    async def prepare(self, body: PrepareOrderIn, **headers: str) -> httpx.Response:
        return await self.http.post(
            "/orders", json=body.model_dump(mode="json"), headers={**TOKEN, **headers}
        )

    async def get(
        self, path: str, owner: Owner | Principal | None, **params: Any
    ) -> httpx.Response:
        principal = owner if isinstance(owner, Principal | None) else principal_of(owner)
        return await self.http.get(path, headers=service_headers(principal), params=params)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with serve(tmp_path) as client:
        yield client


@asynccontextmanager
async def serve(tmp_path: Path, *, register_catalog: bool = True) -> AsyncIterator[Api]:
    runtime = RuntimeSettings(
        data_dir=tmp_path,
        outbox_poll_interval_ms=20,
        consumer_retry_ladder_ms=(10,),
        consumer_retry_budget_s=0.05,  # five retries, 10 ms apart
        catalog_url="http://127.0.0.1:9",  # nothing listens there: "catalog down"
        http_timeout_s=2,
    )
    shared = shared_for(runtime)
    catalog = FakeCatalog()
    if register_catalog:
        shared.directory.register_app("catalog", catalog.app())
    deps = build_deps(OrdersSettings(runtime=runtime), shared, clock=SteppingClock())
    app = create_app(deps=deps)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://orders") as http:
            yield Api(http=http, catalog=catalog, shared=shared)


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code
    return body


async def test_prepare_creates_then_returns_the_same_order(api: Api) -> None:
    mug = api.catalog.add_price(1999, names={"en": "Mug", "fr": "Tasse"}, tax_code="std")
    api.catalog.add_rate("20", country="FR", inclusive=True, tax_code="std")
    body = prepare_in(anonymous(), [(mug, 2)], country="FR", locale="fr", currency="eur")

    created = await api.prepare(body)
    again = await api.prepare(body)
    other_id = await api.prepare(body.model_copy(update={"order_id": str(uuid.uuid4())}))

    assert created.status_code == 201, created.text
    assert again.status_code == 200 and other_id.status_code == 200
    order = created.json()
    assert again.json() == order == other_id.json()
    assert order["id"] == body.order_id
    assert order["currency"] == "EUR" and order["total"] == 3998 and order["paid"] is None
    assert order["owner"] == body.owner.model_dump()
    assert order["customer_id"] == body.customer_id
    details = OrderDetails.model_validate(order["details"])
    assert details.lines[0].name == "Tasse"
    assert (details.subtotal, details.tax, details.total) == (3998, 666, 3998)
    assert order["details"]["tax_lines"][0]["percentage"] == "20"


async def test_prepare_needs_the_service_token(api: Api) -> None:
    mug = api.catalog.add_price(500)
    body = prepare_in(user(), [(mug, 1)])
    response = await api.http.post("/orders", json=body.model_dump(mode="json"))
    problem(response, 401, "invalid_service_token")
    response = await api.http.post(
        "/orders", json=body.model_dump(mode="json"), headers={SERVICE_TOKEN_HEADER: "guess"}
    )
    problem(response, 401, "invalid_service_token")


async def test_bad_input_is_a_422_naming_the_field(api: Api) -> None:
    mug = api.catalog.add_price(500)
    body = prepare_in(user(), [(mug, 1)]).model_dump(mode="json")

    empty = await api.http.post("/orders", json={**body, "lines": []}, headers=TOKEN)
    assert problem(empty, 422, "validation_error")["errors"][0]["field"] == "lines"
    currency = await api.http.post("/orders", json={**body, "currency": "XYZ"}, headers=TOKEN)
    assert problem(currency, 422, "unknown_currency")["errors"][0]["field"] == "currency"
    zero = {**body, "lines": [{"pricing_id": mug, "quantity": 0}]}
    assert (
        problem(await api.http.post("/orders", json=zero, headers=TOKEN), 422, "validation_error")[
            "errors"
        ][0]["field"]
        == "lines.0.quantity"
    )


async def test_unavailable_prices_and_mixed_currencies_are_conflicts(api: Api) -> None:
    mug = api.catalog.add_price(500)
    retired = api.catalog.add_price(500, active=False)
    dollars = api.catalog.add_price(500, "USD")
    owner = user()

    gone = await api.prepare(prepare_in(owner, [(mug, 1), (retired, 1), ("deleted-price", 1)]))
    body = problem(gone, 409, "pricing_unavailable")
    assert body["pricing_ids"] == sorted([retired, "deleted-price"])
    assert retired in body["detail"]

    mixed = await api.prepare(prepare_in(owner, [(mug, 1), (dollars, 1)]))
    assert problem(mixed, 409, "currency_mismatch")["pricing_ids"] == [dollars]

    listed = await api.get("/orders", owner)
    assert listed.json() == {"items": [], "next_cursor": None}


async def test_catalog_down_is_a_503_and_creates_no_order(tmp_path: Path) -> None:
    async with serve(tmp_path, register_catalog=False) as api:
        owner = user()
        body = prepare_in(owner, [(str(uuid.uuid4()), 1)])

        response = await api.prepare(body)

        problem(response, 503, "service_unavailable")
        problem(await api.get(f"/orders/{body.order_id}", owner), 404, "order_not_found")
        assert (await api.get("/orders", owner)).json()["items"] == []


async def test_an_order_is_shown_to_its_owner_only(api: Api) -> None:
    mug = api.catalog.add_price(500)
    owner, shopper = user(), anonymous()
    mine = (await api.prepare(prepare_in(owner, [(mug, 1)]))).json()
    theirs = (await api.prepare(prepare_in(shopper, [(mug, 1)]))).json()

    assert (await api.get(f"/orders/{mine['id']}", owner)).json() == mine
    assert (await api.get(f"/orders/{theirs['id']}", shopper)).json() == theirs
    for who, order_id in [
        (user(), mine["id"]),
        (anonymous(), theirs["id"]),
        (shopper, mine["id"]),
        (None, mine["id"]),
        (owner, "unknown"),
    ]:
        problem(await api.get(f"/orders/{order_id}", who), 404, "order_not_found")
    problem(await api.get("/orders", None), 401, "unauthorized")
    garbled = await api.http.get("/orders", headers={**TOKEN, PRINCIPAL_HEADER: "{not json"})
    problem(garbled, 401, "invalid_principal")


async def test_archive_pages_newest_first_and_filters_paid(api: Api) -> None:
    mug = api.catalog.add_price(500)
    owner = user()
    ids = [(await api.prepare(prepare_in(owner, [(mug, 1)]))).json()["id"] for _ in range(3)]
    await api.shared.bus.publish(
        Envelope.wrap(
            PaymentSucceeded(
                attempt_id="attempt-1",
                order_id=ids[0],
                amount=500,
                currency="EUR",
                provider="dev",
                succeeded_at=datetime(2026, 3, 2, 10, tzinfo=UTC),
            ),
            producer="payments",
        )
    )
    await api.shared.bus.idle()  # type: ignore[attr-defined]

    first = (await api.get("/orders", owner, limit=2)).json()
    second = (await api.get("/orders", owner, limit=2, cursor=first["next_cursor"])).json()
    assert [o["id"] for o in first["items"] + second["items"]] == ids[::-1]
    assert second["next_cursor"] is None

    paid = (await api.get("/orders", owner, paid="paid")).json()["items"]
    assert [(o["id"], o["paid"]) for o in paid] == [(ids[0], "2026-03-02T10:00:00Z")]
    unpaid = (await api.get("/orders", owner, paid="unpaid")).json()["items"]
    assert [o["id"] for o in unpaid] == ids[:0:-1]
    assert (await api.get(f"/orders/{ids[0]}", owner)).json()["paid"] == "2026-03-02T10:00:00Z"


async def test_an_order_shows_its_refunds_and_the_refunded_amount(api: Api) -> None:
    mug = api.catalog.add_price(3000)
    owner = user()
    order_id = (await api.prepare(prepare_in(owner, [(mug, 1)]))).json()["id"]
    fresh = (await api.get(f"/orders/{order_id}", owner)).json()
    assert (fresh["refunded_amount"], fresh["refunds"]) == (0, [])

    done, failed = refund_succeeded(order_id, 1200), refund_failed(order_id, 500)
    for payload in (done, failed, done):
        await api.shared.bus.publish(Envelope.wrap(payload, producer="payments"))
    await api.shared.bus.idle()  # type: ignore[attr-defined]

    body = (await api.get(f"/orders/{order_id}", owner)).json()
    assert body["refunded_amount"] == 1200
    assert sorted(body["refunds"], key=lambda r: r["amount"]) == [
        {
            "id": failed.refund_id,
            "amount": 500,
            "status": "failed",
            "reason": "operator",
            "created_at": "2026-03-03T09:00:00Z",
        },
        {
            "id": done.refund_id,
            "amount": 1200,
            "status": "succeeded",
            "reason": "operator",
            "created_at": "2026-03-03T09:00:00Z",
        },
    ]
    [listed] = (await api.get("/orders", owner)).json()["items"]
    assert (listed["refunded_amount"], listed["refunds"]) == (1200, body["refunds"])


async def test_bad_paging_parameters_are_422(api: Api) -> None:
    owner = user()
    bad_cursor = await api.get("/orders", owner, cursor="not-a-cursor")
    assert problem(bad_cursor, 422, "invalid_cursor")["errors"][0]["field"] == "cursor"
    problem(await api.get("/orders", owner, limit=0), 422, "validation_error")
    problem(await api.get("/orders", owner, limit=1000), 422, "validation_error")
    problem(await api.get("/orders", owner, paid="maybe"), 422, "validation_error")


async def test_health(api: Api) -> None:
    assert (await api.http.get("/healthz")).json()["service"] == "orders"
    ready = await api.http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] is True
