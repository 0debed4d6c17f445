"""Attacks straight at the services, skipping the gateway: in the distributed mode at each
service's port, in the embedded mode at each in-process service app. Without the service
credential, or with a principal that is unsigned, forged, edited or replayed after its
expiry, every call answers 401 and changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.settings import EMBEDDED_PUBLIC_URL
from libs.contracts.common import PRINCIPAL_HEADER, Principal
from libs.runtime.auth import PRINCIPAL_TTL_S, SERVICE_TOKEN_HEADER
from libs.runtime.settings import DEV_SERVICE_TOKEN
from tests.e2e.helpers import PROBLEM, billing
from tests.security.conftest import Victim, new_victim
from tests.support.cluster import SERVICES, RunningStore
from tests.support.services import service_headers, with_edited_claims


@dataclass
class Reach:
    """The gateway for setting things up, and each service straight."""

    gateway: Callable[..., httpx.AsyncClient]
    services: dict[str, httpx.AsyncClient]
    token: str


@pytest.fixture
async def reach(store: RunningStore, tmp_path: Path) -> AsyncIterator[Reach]:
    clients: list[httpx.AsyncClient] = []

    def client(**kwargs: Any) -> httpx.AsyncClient:
        http = httpx.AsyncClient(timeout=15, **kwargs)
        clients.append(http)
        return http

    if store.mode == "distributed":
        services = {n: client(base_url=f"http://127.0.0.1:{store.ports[n]}") for n in SERVICES}
        yield Reach(
            gateway=lambda **h: client(base_url=store.base_url, headers=h),
            services=services,
            token=store.env["STORE_SERVICE_TOKEN"],
        )
    else:
        from cli.embedded import create_embedded_app
        from libs.runtime.settings import RuntimeSettings

        app = create_embedded_app(RuntimeSettings(data_dir=tmp_path))
        async with app.router.lifespan_context(app):
            services = {
                name: client(
                    transport=httpx.ASGITransport(app=app.state.services[name]),
                    base_url=f"http://{name}",
                )
                for name in SERVICES
            }
            yield Reach(
                gateway=lambda **h: client(
                    transport=httpx.ASGITransport(app=app),
                    base_url=EMBEDDED_PUBLIC_URL,
                    headers=h,
                ),
                services=services,
                token=DEV_SERVICE_TOKEN,
            )
    for http in clients:
        await http.aclose()


@pytest.fixture
async def target(reach: Reach) -> AsyncIterator[Victim]:
    async with new_victim(reach.gateway) as victim:
        yield victim


def victim_principal(victim: Victim) -> Principal:
    """Who the victim is, read back from the owner of its cart."""
    return Principal(anonymous_id=victim.customer["owner"]["id"])


def routes(victim: Victim, product_key: str) -> list[tuple[str, str, str, Any]]:
    """(service, method, path, body): internal and admin routes, reads and writes."""
    return [
        ("catalog", "GET", f"/admin/products/{product_key}", None),
        ("catalog", "POST", "/admin/products", {"key": f"evil-{uuid.uuid4().hex[:8]}"}),
        ("catalog", "GET", "/products", None),
        ("cart", "GET", "/carts/current", None),
        ("cart", "POST", "/carts/current/lines", {"pricing_id": victim.price["id"]}),
        ("cart", "POST", "/carts/merge", {"anonymous_id": "x", "user_id": "y"}),
        ("orders", "GET", "/orders", None),
        ("orders", "GET", "/admin/orders", None),
        (
            "orders",
            "POST",
            f"/admin/orders/{uuid.uuid4()}/fulfillments",
            {"carrier": "Evil", "tracking_number": "1"},
        ),
        ("payments", "GET", "/customers", None),
        ("payments", "POST", "/customers", billing(name="Mallory")),
        ("payments", "DELETE", f"/customers/{victim.customer['id']}", None),
        ("payments", "GET", "/subscriptions", None),
        ("payments", "POST", f"/subscriptions/{uuid.uuid4()}/cancel", None),
    ]


PRINCIPAL_ROUTES = {"/carts/current", "/carts/current/lines", "/orders", "/customers"}


def assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401, (response.request.url, response.text[:300])
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_no_or_a_wrong_service_credential_is_refused_everywhere(
    reach: Reach, target: Victim
) -> None:
    who = victim_principal(target)
    key = (await target.http.get("/api/store/products", params={"limit": 1})).json()["items"][0]
    before = await target.state()
    legacy = {PRINCIPAL_HEADER: who.model_dump_json()}  # the old unsigned header
    attempts = [
        {},
        legacy,
        {**legacy, SERVICE_TOKEN_HEADER: "guess"},
        {**service_headers(who, token="a-guessed-token-of-at-least-32-bytes"), **legacy},
        {SERVICE_TOKEN_HEADER: DEV_SERVICE_TOKEN}
        if reach.token != DEV_SERVICE_TOKEN
        else {SERVICE_TOKEN_HEADER: ""},
    ]
    attacks = routes(target, key["key"])
    for service, method, path, body in attacks:
        for headers in attempts:
            response = await reach.services[service].request(
                method, path, json=body, headers=headers
            )
            assert_401(response)
    assert await target.state() == before
    created = next(body for _, _, path, body in attacks if path == "/admin/products")["key"]
    assert (await target.http.get(f"/api/store/products/{created}")).status_code == 404


async def test_an_unsigned_forged_edited_or_replayed_principal_is_refused(
    reach: Reach, target: Victim
) -> None:
    who = victim_principal(target)
    before = await target.state()
    credential = {SERVICE_TOKEN_HEADER: reach.token}
    own = service_headers(Principal(anonymous_id="mallory"), token=reach.token)[PRINCIPAL_HEADER]
    principals = {
        "unsigned": who.model_dump_json(),
        "forged": service_headers(who, token="a-guessed-key-of-at-least-32-bytes!")[
            PRINCIPAL_HEADER
        ],
        "edited": with_edited_claims(own, principal=who.model_dump(mode="json")),
        "replayed": service_headers(who, token=reach.token, issued_s_ago=PRINCIPAL_TTL_S + 120)[
            PRINCIPAL_HEADER
        ],
        "garbage": "not-a-token",
    }
    for service, method, path, body in routes(target, "unused"):
        if path not in PRINCIPAL_ROUTES:
            continue
        for name, principal in principals.items():
            headers = {**credential, PRINCIPAL_HEADER: principal}
            response = await reach.services[service].request(
                method, path, json=body, headers=headers
            )
            assert_401(response)
            assert response.json()["code"] == "invalid_principal", name
    assert await target.state() == before


async def test_a_fresh_principal_with_the_credential_is_served(
    reach: Reach, target: Victim
) -> None:
    """The control: the same calls, made as the gateway makes them, do reach the services."""
    who = victim_principal(target)
    cart = await reach.services["cart"].get(
        "/carts/current", headers=service_headers(who, token=reach.token)
    )
    assert cart.status_code == 200
    assert [line["pricing_id"] for line in cart.json()["lines"]] == [target.price["id"]]


async def test_a_services_api_description_needs_the_credential(reach: Reach) -> None:
    """Finding 6: a service's routes, admin ones included, are not described to whoever reaches
    its port; with the credential the description is served, and there is no browsable UI."""
    for service, http in reach.services.items():
        for path in ("/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"):
            response = await http.get(path)
            assert response.status_code in (401, 404), (service, path, response.status_code)
            assert "paths" not in response.text
        described = await http.get("/openapi.json", headers={SERVICE_TOKEN_HEADER: reach.token})
        assert described.status_code == 200, (service, described.text[:300])
        assert described.json()["paths"], service
        for path in ("/docs", "/redoc"):
            ui = await http.get(path, headers={SERVICE_TOKEN_HEADER: reach.token})
            assert ui.status_code == 404, (service, path)
