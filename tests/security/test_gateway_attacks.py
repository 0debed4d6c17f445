"""Attacks through the gateway's public address, in both modes. Each one answers a 4xx problem
and changes nothing a shopper could see."""

from __future__ import annotations

import asyncio
import http.client
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from itsdangerous import URLSafeTimedSerializer

from tests.e2e.helpers import PROBLEM, assert_problem
from tests.security.conftest import CHECKOUT, URLS, Victim
from tests.support.cluster import RunningStore
from tests.support.services import with_edited_claims

ADMIN_FIELDS = ("prices", "translations", "images", "tax_code")


def raw_request(
    store: RunningStore,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """Send `path` exactly as written: no client-side normalization of `..` or `%2e`."""
    url = urlsplit(store.base_url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=15)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.putheader("content-length", str(len(body or b"")))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def assert_refused_without_a_byte(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 404, (status, body[:300])
    assert headers.get("content-type", "").startswith(PROBLEM), headers
    problem = json.loads(body)
    assert not any(field in problem for field in ADMIN_FIELDS), problem


# --- traversal on every route that forwards a path ------------------------------------------

TRAVERSALS = [
    "/media/%2e%2e/admin/products/{key}",
    "/media/%2E%2E/admin/products/{key}",
    "/media/..%2fadmin%2fproducts%2f{key}",
    "/media/%2e%2e%2fadmin%2fproducts%2f{key}",
    "/media/products/%2e%2e/%2e%2e/admin/products/{key}",
    "/media/..%5cadmin%5cproducts%5c{key}",
    "/media/%5c..%5cadmin/products/{key}",
    "/media/%2fadmin/products/{key}",
    "/media//admin/products/{key}",
    "/media/.%2e/admin/products/{key}",
    "/media/%252e%252e/admin/products/{key}",
    "/media/products/.hidden.png",
    "/media/x/../../admin/products/{key}",
    "/api/payments/dev-checkout/%2e%2e/%2e%2e/customers",
    "/api/payments/dev-checkout/..%2f..%2fcustomers",
    "/api/payments/dev-checkout/%2e%2e%2fpayments%2fx",
    "/api/payments/webhooks/..%2f..%2fcustomers",
    "/api/payments/%2e%2e/customers",
    "/api/payments/..%2fcustomers",
    "/api/payments/dev-checkout/x%2f..%2f..%2forders",
    "/api/payments/dev-checkout/%5c..%5ccustomers",
]


@pytest.fixture
async def product_key(store: RunningStore) -> str:
    async with httpx.AsyncClient(base_url=store.base_url) as http:
        page = (await http.get("/api/store/products", params={"limit": 1})).json()
    return str(page["items"][0]["key"])


@pytest.mark.parametrize("template", TRAVERSALS)
def test_traversal_reaches_no_admin_or_internal_route(
    store: RunningStore, product_key: str, template: str
) -> None:
    path = template.format(key=product_key)
    answers = {
        method: raw_request(store, method, path, b"{}" if method == "POST" else None)
        for method in ("GET", "POST")
    }
    for method, (status, headers, body) in answers.items():
        if status == 405:
            # A route of another method matched: that method must have been refused too.
            allowed = {name.strip() for name in headers.get("allow", "").split(",")}
            tried = allowed & set(answers)
            assert tried, (method, path, headers)
            for other in tried:
                assert_refused_without_a_byte(*answers[other])
            continue
        assert_refused_without_a_byte(status, headers, body)


def test_a_real_media_file_is_still_served(store: RunningStore) -> None:
    status, _, body = raw_request(store, "GET", "/api/store/products?limit=1")
    url = json.loads(body)["items"][0]["images"][0]["url"]
    status, headers, content = raw_request(store, "GET", urlsplit(url).path)
    assert status == 200 and headers["content-type"].startswith("image/"), status
    assert len(content) > 100


# --- tokens: alg=none and algorithm confusion, each signed with the right key ---------------


def jwt_secret(store: RunningStore) -> str:
    from gateway.settings import DEV_JWT_SECRET

    return store.env.get("GATEWAY_JWT_SECRET", DEV_JWT_SECRET)


def forged_tokens(store: RunningStore, user_id: str) -> dict[str, str]:
    claims = {"sub": user_id, "exp": int(time.time()) + 300}
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "alg-none": jwt.encode(claims, None, algorithm="none"),
        "HS384-right-secret": jwt.encode(claims, jwt_secret(store), algorithm="HS384"),
        "HS512-right-secret": jwt.encode(claims, jwt_secret(store), algorithm="HS512"),
        "RS256-own-key": jwt.encode(claims, rsa_key, algorithm="RS256"),
        "HS256-expired": jwt.encode(
            {**claims, "exp": int(time.time()) - 3600}, jwt_secret(store), algorithm="HS256"
        ),
        "HS256-edited": with_edited_claims(
            jwt.encode(claims, jwt_secret(store), algorithm="HS256"), orgs=["someone-elses"]
        ),
    }


def as_user(
    store: RunningStore, shopper: Callable[..., httpx.AsyncClient], user: str
) -> httpx.AsyncClient:
    """A shopper logged in as `user` with a genuine token."""
    from tests.e2e.conftest import token_for

    return shopper(authorization=f"Bearer {token_for(store, user)}")


async def test_forged_user_tokens_are_refused_and_change_nothing(
    store: RunningStore, shopper: Callable[..., httpx.AsyncClient]
) -> None:
    user_id = f"user-{time.time_ns()}"
    real = as_user(store, shopper, user_id)
    pricing_id = await first_pricing_id(real)
    assert (await real.post("/api/store/cart/lines", json={"pricing_id": pricing_id})).is_success
    before = (await real.get("/api/store/cart")).json()
    for name, token in forged_tokens(store, user_id).items():
        attacker = shopper(authorization=f"Bearer {token}")
        response = await attacker.post("/api/store/cart/lines", json={"pricing_id": pricing_id})
        assert_problem(response, 401, "invalid_token")
        assert (await attacker.get("/api/store/orders")).status_code == 401, name
    assert (await real.get("/api/store/cart")).json() == before


# --- the anonymous cookie: expired or edited ------------------------------------------------


def cookie_secret(store: RunningStore) -> str:
    from gateway.settings import DEV_COOKIE_SECRET

    return store.env.get("GATEWAY_COOKIE_SECRET", DEV_COOKIE_SECRET)


async def test_an_expired_or_edited_cookie_is_no_identity(
    store: RunningStore, victim: Victim, shopper: Callable[..., httpx.AsyncClient]
) -> None:
    stolen = victim.http.cookies["store_anon"]
    anonymous_id = URLSafeTimedSerializer(cookie_secret(store), salt="store.anonymous").loads(
        stolen
    )
    old = URLSafeTimedSerializer(cookie_secret(store), salt="store.anonymous")
    old.default_signer.get_timestamp = lambda self=None: int(time.time()) - 31 * 24 * 3600  # type: ignore[method-assign]
    expired = old.dumps(anonymous_id)
    head, _, signature = stolen.partition(".")
    edited = f"{head[:-2]}AA.{signature}"
    before = await victim.state()
    for value in (expired, edited, "not-a-cookie"):
        attacker = shopper()
        attacker.cookies.set("store_anon", value)
        checkout = await attacker.post("/api/store/checkout", json=CHECKOUT)
        assert_problem(checkout, 401)
        assert (await attacker.get("/api/store/cart")).json()["lines"] == []
    assert await victim.state() == before


async def test_writing_the_cart_renews_the_cookie(victim: Victim) -> None:
    first = victim.http.cookies["store_anon"]
    await asyncio.sleep(1.1)  # itsdangerous timestamps have one-second resolution
    response = await victim.http.post(
        "/api/store/cart/lines", json={"pricing_id": victim.price["id"]}
    )
    assert response.status_code == 200
    renewed = response.cookies.get("store_anon")
    assert renewed and renewed != first
    signer = URLSafeTimedSerializer("x", salt="store.anonymous")
    assert signer.loads_unsafe(renewed)[1] == signer.loads_unsafe(first)[1]  # the same shopper


# --- open redirects -------------------------------------------------------------------------

BAD_RETURN_URLS = [
    "javascript:alert(document.cookie)",
    "data:text/html,<script>alert(1)</script>",
    "//evil.example/phish",
    "/relative/path",
    "https:///no-host",
    "https://user:pass@evil.example/",
    "https://evil.example\\@shop.example/",
    "ftp://shop.example/thanks",
    " https://shop.example/thanks",
]


@pytest.mark.parametrize("bad", BAD_RETURN_URLS)
async def test_a_return_url_that_is_not_absolute_http_is_refused(victim: Victim, bad: str) -> None:
    before = await victim.state()
    for urls in ({**URLS, "success_url": bad}, {**URLS, "cancel_url": bad}):
        response = await victim.http.post("/api/store/checkout", json=urls)
        assert_problem(response, 422, "invalid_return_url")
    assert await victim.state() == before


async def test_checkout_links_use_the_public_origin(store: RunningStore, victim: Victim) -> None:
    response = await victim.http.post("/api/store/checkout", json=CHECKOUT)
    assert response.status_code == 200, response.text
    assert response.json()["payment"]["checkout_url"].startswith(f"{store.base_url}/api/payments/")
    # A proxy's forwarded scheme moves no link: the configured origin is the only address.
    order_id = response.json()["order"]["id"]
    proxied = await victim.http.post(
        f"/api/store/orders/{order_id}/pay", json=URLS, headers={"x-forwarded-proto": "https"}
    )
    assert proxied.status_code == 200, proxied.text
    assert proxied.json()["payment"]["checkout_url"].startswith(f"{store.base_url}/api/payments/")


# --- oversized bodies -----------------------------------------------------------------------


async def test_an_oversized_body_is_refused_with_413(victim: Victim) -> None:
    before = await victim.state()
    padding = "x" * (1024 * 1024 + 10)
    big = {"pricing_id": victim.price["id"], "padding": padding}
    assert_problem(await victim.http.post("/api/store/cart/lines", json=big), 413)

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"pricing_id": "' + victim.price["id"].encode() + b'", "padding": "'
        for _ in range(40):
            yield b"y" * 32 * 1024
        yield b'"}'

    response = await victim.http.post(
        "/api/store/cart/lines", content=streamed(), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, "payload_too_large")
    webhook = await victim.http.post(
        "/api/payments/webhooks/stripe",
        content=b"{" + b" " * (300 * 1024) + b"}",
        headers={"content-type": "application/json", "stripe-signature": "t=1,v1=x"},
    )
    assert_problem(webhook, 413, "payload_too_large")
    assert await victim.state() == before


async def first_pricing_id(http: httpx.AsyncClient) -> str:
    product = (await http.get("/api/store/products", params={"limit": 1})).json()["items"][0]
    return str(product["prices"][0]["id"])
