"""The cart app over HTTP: every endpoint the gateway calls, and its problem responses."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from libs.contracts.common import PRINCIPAL_HEADER, Principal
from libs.contracts.envelope import Envelope
from libs.contracts.events import OrderCreated, OrderPaid, PricingChanged
from libs.runtime.http import SERVICE_TOKEN_HEADER
from libs.runtime.runtime import shared_for
from services.cart.app import create_app
from tests.support.services import TEST_SERVICE_TOKEN, service_headers
from tests.unit.cart.builders import cart_settings, published
from tests.unit.cart.fakes import FakeCatalog

PROBLEM = "application/problem+json"


@pytest.fixture
def catalog() -> FakeCatalog:
    return FakeCatalog()


@pytest.fixture
async def app(tmp_path: Path, catalog: FakeCatalog) -> AsyncIterator[Any]:
    settings = cart_settings(tmp_path)
    shared = shared_for(settings.runtime)
    shared.directory.register_app("catalog", catalog.app())
    app = create_app(settings=settings, shared=shared)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway's view: every request carries the shared service token."""
    transport = httpx.ASGITransport(app=app)
    token = service_headers(token=app.state.cart.settings.runtime.service_token)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://cart", headers=token
    ) as client:
        yield client


def as_anonymous(anonymous_id: str | None = None) -> dict[str, str]:
    return service_headers(
        Principal(anonymous_id=anonymous_id or uuid.uuid4().hex), token=TEST_SERVICE_TOKEN
    )


def as_user(user_id: str | None = None) -> dict[str, str]:
    return service_headers(Principal(user_id=user_id or uuid.uuid4().hex), token=TEST_SERVICE_TOKEN)


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == code
    return body


WHO = [as_anonymous, as_user]


async def test_without_a_principal_the_cart_is_refused(client: httpx.AsyncClient) -> None:
    problem(await client.get("/carts/current"), 401, "principal_required")
    bad = {PRINCIPAL_HEADER: "not json"}
    problem(await client.get("/carts/current", headers=bad), 401, "invalid_principal")
    nobody = service_headers(Principal(), token=TEST_SERVICE_TOKEN)
    problem(await client.get("/carts/current", headers=nobody), 401, "principal_required")


@pytest.mark.parametrize("who", WHO)
async def test_no_cart_yet_is_an_empty_cart(client, who) -> None:
    response = await client.get("/carts/current", headers=who())
    assert response.status_code == 200
    assert response.json() == {
        "cart_id": None,
        "lines": [],
        "currency": None,
        "subtotal": 0,
        "total": 0,
        "item_count": 0,
        "starts_subscription": False,
        "requires_shipping": False,
    }


@pytest.mark.parametrize("who", WHO)
async def test_add_change_remove_and_summarize(client, catalog, who) -> None:
    me = who()
    mug = catalog.add(1290, names={"en": "Mug", "de": "Tasse"})
    plan = catalog.add(500, names={"en": "Club", "de": "Klub"}, interval="month")
    added = await client.post(
        "/carts/current/lines?locale=de",
        json={"pricing_id": mug.pricing_id, "quantity": 2},
        headers=me,
    )
    assert added.status_code == 200, added.text
    await client.post("/carts/current/lines", json={"pricing_id": plan.pricing_id}, headers=me)
    again = await client.post(
        "/carts/current/lines?locale=de", json={"pricing_id": mug.pricing_id}, headers=me
    )
    body = again.json()
    assert [(x["name"], x["quantity"], x["unit_amount"], x["subtotal"]) for x in body["lines"]] == [
        ("Tasse", 3, 1290, 3870),
        ("Klub", 1, 500, 500),
    ]
    assert body["cart_id"] == added.json()["cart_id"]
    assert (body["currency"], body["subtotal"], body["total"], body["item_count"]) == (
        "EUR",
        4370,
        4370,
        4,
    )
    assert body["starts_subscription"] is True
    assert all(x["available"] for x in body["lines"])

    mug_line = body["lines"][0]["line_id"]
    patched = await client.patch(
        f"/carts/current/lines/{mug_line}", json={"quantity": 1}, headers=me
    )
    assert patched.status_code == 200
    assert [x["quantity"] for x in patched.json()["lines"]] == [1, 1]
    removed = await client.delete(f"/carts/current/lines/{mug_line}", headers=me)
    assert removed.status_code == 200
    assert [x["pricing_id"] for x in removed.json()["lines"]] == [plan.pricing_id]
    current = await client.get("/carts/current?locale=en", headers=me)
    assert [x["name"] for x in current.json()["lines"]] == ["Club"]
    problem(
        await client.patch(f"/carts/current/lines/{mug_line}", json={"quantity": 2}, headers=me),
        404,
        "line_not_found",
    )
    problem(
        await client.delete(f"/carts/current/lines/{mug_line}", headers=me), 404, "line_not_found"
    )


@pytest.mark.parametrize("who", WHO)
async def test_the_rules_answer_with_clear_problems(client, catalog, who) -> None:
    me = who()
    eur, usd, old = (
        catalog.add(currency="EUR"),
        catalog.add(currency="USD"),
        catalog.add(active=False),
    )

    def add(pricing_id: str, quantity: int = 1) -> Any:
        return client.post(
            "/carts/current/lines",
            json={"pricing_id": pricing_id, "quantity": quantity},
            headers=me,
        )

    body = problem(await add(eur.pricing_id, 100), 422, "quantity_exceeds_maximum")
    assert body["errors"][0]["field"] == "quantity" and body["maximum"] == 99
    problem(await add(eur.pricing_id, 0), 422, "validation_error")
    body = problem(await add("nope"), 422, "unknown_pricing")
    assert body["errors"] == [{"field": "pricing_id", "message": "no price 'nope' exists"}]
    problem(await add(old.pricing_id), 422, "pricing_inactive")
    assert (await add(eur.pricing_id, 99)).status_code == 200
    problem(await add(eur.pricing_id, 1), 422, "quantity_exceeds_maximum")
    body = problem(await add(usd.pricing_id), 409, "currency_mismatch")
    assert "EUR" in body["detail"] and "USD" in body["detail"]
    assert (body["cart_currency"], body["pricing_currency"]) == ("EUR", "USD")
    line = (await client.get("/carts/current", headers=me)).json()["lines"][0]["line_id"]
    problem(
        await client.patch(f"/carts/current/lines/{line}", json={"quantity": 100}, headers=me),
        422,
        "quantity_exceeds_maximum",
    )
    problem(await client.get("/carts/current?locale=x!", headers=me), 422, "validation_error")


async def test_each_shopper_sees_only_their_own_cart(client, catalog) -> None:
    shoppers = [as_anonymous(), as_anonymous(), as_user(), as_user()]
    for n, headers in enumerate(shoppers, 1):
        price = catalog.add(n * 100)
        await client.post(
            "/carts/current/lines",
            json={"pricing_id": price.pricing_id, "quantity": n},
            headers=headers,
        )
    seen = [(await client.get("/carts/current", headers=h)).json() for h in shoppers]
    assert [[x["quantity"] for x in cart["lines"]] for cart in seen] == [[1], [2], [3], [4]]
    assert len({cart["cart_id"] for cart in seen}) == 4
    intruder_line = seen[0]["lines"][0]["line_id"]
    problem(
        await client.delete(f"/carts/current/lines/{intruder_line}", headers=shoppers[1]),
        404,
        "line_not_found",
    )


async def test_merge_endpoint(client, catalog, app) -> None:
    anonymous_id, user_id = uuid.uuid4().hex, uuid.uuid4().hex
    mug = catalog.add(1000)
    await client.post(
        "/carts/current/lines",
        json={"pricing_id": mug.pricing_id, "quantity": 2},
        headers=as_anonymous(anonymous_id),
    )
    body = {"anonymous_id": anonymous_id, "user_id": user_id}
    first = await client.post("/carts/merge", json=body)
    assert first.status_code == 200
    assert first.json()["merged"] is True
    assert [x["quantity"] for x in first.json()["cart"]["lines"]] == [2]
    second = await client.post("/carts/merge", json=body)
    assert second.json()["merged"] is False
    assert second.json()["cart"] == first.json()["cart"]
    mine = await client.get("/carts/current", headers=as_user(user_id))
    assert mine.json() == first.json()["cart"]
    assert (await client.get("/carts/current", headers=as_anonymous(anonymous_id))).json()[
        "lines"
    ] == []
    deps = app.state.cart
    assert len(await published(deps, "identity.anonymous.merged.v1")) == 1
    assert len(await published(deps, "cart.cart.merged.v1")) == 1
    problem(await client.post("/carts/merge", json={"user_id": user_id}), 422, "validation_error")


async def test_a_merged_anonymous_id_checks_out_nothing(client, catalog, app) -> None:
    anonymous_id, user_id = uuid.uuid4().hex, uuid.uuid4().hex
    me = as_anonymous(anonymous_id)
    mug = catalog.add(1000)
    await client.post("/carts/current/lines", json={"pricing_id": mug.pricing_id}, headers=me)
    body = {"anonymous_id": anonymous_id, "user_id": user_id}
    assert (await client.post("/carts/merge", json=body)).json()["merged"] is True
    # A copy of the cookie starts a new anonymous cart under the merged id, and checks it out.
    await client.post("/carts/current/lines", json={"pricing_id": mug.pricing_id}, headers=me)
    checkout = await client.post(
        "/carts/current/checkout", json={"order_id": str(uuid.uuid4())}, headers=me
    )
    problem(checkout, 401, "anonymous_identity_merged")
    assert len(await published(app.state.cart, "cart.cart.checked_out.v1")) == 0
    user_cart = await client.get("/carts/current", headers=as_user(user_id))
    assert [x["quantity"] for x in user_cart.json()["lines"]] == [1]


@pytest.mark.parametrize("who", WHO)
async def test_checkout_endpoint(client, catalog, app, who) -> None:
    me = who()
    mug = catalog.add(1000)
    problem(
        await client.post(
            "/carts/current/checkout", json={"order_id": str(uuid.uuid4())}, headers=me
        ),
        422,
        "cart_empty",
    )
    added = await client.post(
        "/carts/current/lines", json={"pricing_id": mug.pricing_id}, headers=me
    )
    order_id = str(uuid.uuid4())
    frozen = await client.post("/carts/current/checkout", json={"order_id": order_id}, headers=me)
    assert frozen.status_code == 200, frozen.text
    body = frozen.json()
    principal = jwt.decode(me[PRINCIPAL_HEADER], options={"verify_signature": False})["principal"]
    owner = (
        {"kind": "user", "id": principal["user_id"]}
        if principal["user_id"]
        else {
            "kind": "anonymous",
            "id": principal["anonymous_id"],
        }
    )
    assert body == {
        "cart_id": added.json()["cart_id"],
        "order_id": order_id,
        "owner": owner,
        "currency": "EUR",
        "lines": [{"pricing_id": mug.pricing_id, "quantity": 1}],
    }
    # A retry (new proposed id) gets the same frozen cart until the order is paid.
    retry = await client.post(
        "/carts/current/checkout", json={"order_id": str(uuid.uuid4())}, headers=me
    )
    assert retry.json() == body
    facts = {"order_id": order_id, "number": "7", "owner": owner, "currency": "EUR", "total": 1000}
    bus = app.state.cart.runtime.bus
    await bus.publish(Envelope.wrap(OrderCreated(**facts), producer="orders"))
    await bus.idle()
    retry = await client.post(
        "/carts/current/checkout", json={"order_id": str(uuid.uuid4())}, headers=me
    )
    assert retry.json() == body  # created but not paid: still the same checkout
    paid = OrderPaid(**facts, paid_at=datetime.now(UTC))
    await bus.publish(Envelope.wrap(paid, producer="orders"))
    await bus.idle()
    problem(
        await client.post(
            "/carts/current/checkout", json={"order_id": str(uuid.uuid4())}, headers=me
        ),
        422,
        "cart_empty",
    )
    # The next add starts a new cart.
    fresh = await client.post(
        "/carts/current/lines", json={"pricing_id": mug.pricing_id}, headers=me
    )
    assert fresh.json()["cart_id"] != body["cart_id"]
    problem(
        await client.post("/carts/current/checkout", json={}, headers=me), 422, "validation_error"
    )


async def test_a_price_event_changes_what_the_summary_shows(client, catalog, app) -> None:
    me = as_anonymous()
    mug = catalog.add(1000)
    await client.post("/carts/current/lines", json={"pricing_id": mug.pricing_id}, headers=me)
    mug.unit_amount = 800
    assert (await client.get("/carts/current", headers=me)).json()["total"] == 1000  # cached
    event = PricingChanged(
        pricing_id=mug.pricing_id, product_key=mug.product_key, unit_amount=800, currency="EUR"
    )
    bus = app.state.cart.runtime.bus
    await bus.publish(Envelope.wrap(event, producer="catalog"))
    await bus.idle()
    assert (await client.get("/carts/current", headers=me)).json()["total"] == 800


async def test_an_unreachable_catalog_is_a_503(tmp_path: Path) -> None:
    settings = cart_settings(
        tmp_path, runtime={"catalog_url": "http://127.0.0.1:9", "http_timeout_s": 1}
    )
    app = create_app(settings=settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://cart"
        ) as client:
            response = await client.post(
                "/carts/current/lines", json={"pricing_id": "p"}, headers=as_user()
            )
            problem(response, 503, "service_unavailable")
            ready = await client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["checks"]["redis"] is True


async def test_merge_and_checkout_need_the_service_token(client, catalog) -> None:
    me = as_user()
    body = {"anonymous_id": uuid.uuid4().hex, "user_id": uuid.uuid4().hex}
    for headers in ({SERVICE_TOKEN_HEADER: "wrong"}, {SERVICE_TOKEN_HEADER: ""}):
        problem(
            await client.post("/carts/merge", json=body, headers=headers),
            401,
            "invalid_service_token",
        )
        problem(
            await client.post(
                "/carts/current/checkout",
                json={"order_id": str(uuid.uuid4())},
                headers={**me, **headers},
            ),
            401,
            "invalid_service_token",
        )
