"""The storefront and its dev login are served where the settings allow, and nowhere else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from gateway.app import create_app
from gateway.identity import TokenVerifier
from gateway.settings import GatewaySettings
from libs.runtime.settings import RuntimeSettings

STRONG = "s" * 48
SHOP = "http://shop.test"


@pytest.fixture(autouse=True)
def no_storefront_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in ("GATEWAY_STOREFRONT_ENABLED", "GATEWAY_STOREFRONT_DEV_LOGIN"):
        monkeypatch.delenv(name, raising=False)
    yield monkeypatch


def embedded(tmp_path: Path) -> GatewaySettings:
    return GatewaySettings(runtime=RuntimeSettings(data_dir=tmp_path), public_url=SHOP)


def distributed(tmp_path: Path, **gateway: str) -> GatewaySettings:
    runtime = RuntimeSettings(
        data_dir=tmp_path,
        broker_url="amqp://guest:guest@127.0.0.1:5672/",
        redis_url="redis://127.0.0.1:6379/0",
        service_token=STRONG,
    )
    fields = {"jwt_secret": STRONG, "cookie_secret": STRONG + "c", "public_url": SHOP, **gateway}
    return GatewaySettings(runtime=runtime, **fields)


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=SHOP)


def paths(app: FastAPI) -> set[str]:
    return {getattr(route, "path", "") for route in app.routes}


async def test_the_distributed_gateway_has_no_dev_login_and_no_shop_by_default(
    tmp_path: Path,
) -> None:
    app = create_app(distributed(tmp_path))
    assert not {"/api/dev/token", "/shop", "/shop/config.json"} & paths(app)
    async with client(app) as http:
        minted = await http.post("/api/dev/token", json={"user_id": "admin"})
        assert minted.status_code in (404, 405) and "token" not in minted.json()
        assert (await http.get("/shop/")).status_code == 404


async def test_the_embedded_gateway_serves_the_shop_and_signs_dev_tokens(tmp_path: Path) -> None:
    settings = embedded(tmp_path)
    async with client(create_app(settings)) as http:
        page = await http.get("/shop/")
        assert page.status_code == 200 and 'src="js/app.js"' in page.text
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert (await http.get("/shop")).headers["location"] == "/shop/"
        script = await http.get("/shop/js/app.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        config = (await http.get("/shop/config.json")).json()
        assert config["dev_login"] is True
        assert config["currency_exponents"]["EUR"] == 2
        assert config["currency_exponents"]["JPY"] == 0
        assert config["currency_exponents"]["HUF"] == 2  # ISO 4217, not the CLDR display digits

        minted = await http.post("/api/dev/token", json={"user_id": "ada", "orgs": ["acme"]})
        assert minted.status_code == 200
        assert await TokenVerifier(settings).verify(minted.json()["token"]) == ("ada", ["acme"])
        refused = await http.post("/api/dev/token", json={"user_id": "ada smith\n"})
        assert refused.status_code == 422 and "token" not in refused.json()


async def test_the_distributed_gateway_serves_them_only_when_asked(
    tmp_path: Path, no_storefront_env: pytest.MonkeyPatch
) -> None:
    no_storefront_env.setenv("GATEWAY_STOREFRONT_ENABLED", "true")
    app = create_app(distributed(tmp_path))
    async with client(app) as http:
        assert (await http.get("/shop/")).status_code == 200
        assert (await http.get("/shop/config.json")).json()["dev_login"] is False
        assert (await http.post("/api/dev/token", json={"user_id": "a"})).status_code in (404, 405)

    no_storefront_env.setenv("GATEWAY_STOREFRONT_DEV_LOGIN", "true")
    settings = distributed(tmp_path)
    async with client(create_app(settings)) as http:
        minted = await http.post("/api/dev/token", json={"user_id": "ada"})
        assert await TokenVerifier(settings).verify(minted.json()["token"]) == ("ada", [])


async def test_no_dev_login_when_tokens_are_signed_elsewhere(
    tmp_path: Path, no_storefront_env: pytest.MonkeyPatch
) -> None:
    no_storefront_env.setenv("GATEWAY_STOREFRONT_DEV_LOGIN", "true")
    app = create_app(distributed(tmp_path, jwt_public_key="-----BEGIN PUBLIC KEY-----"))
    assert "/api/dev/token" not in paths(app)
