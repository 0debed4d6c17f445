"""Mounts the storefront's static files at `/shop/` and, in development only, the dev login.

The storefront is plain HTML, CSS and JavaScript modules (no build step). It reaches the store
only through the public `/api/store/*` and `/api/payments/*` endpoints, as any front end would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Body, FastAPI
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from gateway.identity import issue_token
from gateway.settings import GatewaySettings
from gateway.storefront.settings import StorefrontSettings
from libs.contracts.money import active_currencies, currency_exponent

log = structlog.get_logger(__name__)

STATIC = Path(__file__).parent / "static"
LOCALES = ("en", "de", "fr")
DEV_TOKEN_LIFETIME_S = 8 * 3600

# The shop's pages load only their own scripts, styles and images; nothing may frame them.
SHOP_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


class DevTokenIn(BaseModel):
    user_id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._@-]+$")
    orgs: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=20
    )


class DevTokenOut(BaseModel):
    token: str
    token_type: str = "Bearer"
    expires_in: int


def mount_storefront(
    app: FastAPI, settings: GatewaySettings, storefront: StorefrontSettings | None = None
) -> None:
    """Add `/shop/` and `POST /api/dev/token` to the gateway where the settings allow them."""
    storefront = storefront or StorefrontSettings()
    embedded = settings.runtime.embedded
    dev_login = storefront.serves_dev_login(embedded=embedded)
    if dev_login and settings.jwt_public_key:
        log.warning("storefront.dev_login_off", reason="tokens are RS256; no secret to sign with")
        dev_login = False
    if dev_login:
        if not embedded:
            log.warning(
                "storefront.dev_login_on",
                detail="POST /api/dev/token signs a token for ANY user id: development only",
            )
        app.include_router(_dev_login_router(settings.jwt_secret))
    if storefront.serves_shop(embedded=embedded):
        app.include_router(_config_router(dev_login=dev_login))
        app.mount("/shop", ShopHeaders(StaticFiles(directory=STATIC, html=True)), name="shop")


def _dev_login_router(secret: str) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.post("/api/dev/token")
    async def dev_token(body: Annotated[DevTokenIn, Body()]) -> DevTokenOut:
        """A user token signed like `store token USER` does; development only."""
        token = issue_token(
            body.user_id, secret=secret, orgs=body.orgs, expires_in_s=DEV_TOKEN_LIFETIME_S
        )
        return DevTokenOut(token=token, expires_in=DEV_TOKEN_LIFETIME_S)

    return router


def _config_router(*, dev_login: bool) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    # The minor-unit digits the API counts in (ISO 4217), which the browser's Intl data
    # (CLDR display digits) does not always match: HUF, IDR, IQD...
    exponents = {code: currency_exponent(code) for code in sorted(active_currencies())}

    @router.get("/shop")
    async def shop_root() -> RedirectResponse:
        return RedirectResponse("/shop/", status_code=308)

    @router.get("/shop/config.json")
    async def shop_config() -> dict[str, Any]:
        """What the storefront needs to know about this gateway."""
        return {"dev_login": dev_login, "locales": LOCALES, "currency_exponents": exponents}

    return router


class ShopHeaders:
    """Adds the shop's security headers to every static response."""

    def __init__(self, app: StaticFiles) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers.extend((k.encode(), v.encode()) for k, v in SHOP_HEADERS.items())
            await send(message)

        await self.app(scope, receive, send_with_headers)
