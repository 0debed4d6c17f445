"""The public origin's rules on their own: how hosts compare, which public URLs start, which
hosts each mode answers and returns to."""

from __future__ import annotations

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from gateway.origin import PublicOrigin, PublicOriginMiddleware, normalized_host
from gateway.settings import GatewaySettings
from libs.runtime.settings import RuntimeSettings

CYRILLIC_E = "\u0435"
STRONG = "s" * 48
DISTRIBUTED = RuntimeSettings(broker_url="amqp://guest:guest@127.0.0.1:5672/", service_token=STRONG)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("Shop.Example.", "shop.example"),
        (f"{CYRILLIC_E}vil.example", "xn--vil-qdd.example"),
        ("straße.example", "xn--strae-oqa.example"),  # as browsers look it up (UTS 46)
        ("[::1]", "::1"),
        ("127.0.0.1", "127.0.0.1"),
        ("shop%2eexample", None),
        ("a..b", None),
        ("-shop.example", None),
        ("", None),
    ],
)
def test_hosts_compare_in_one_form(host: str, expected: str | None) -> None:
    assert normalized_host(host) == expected


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://Shop.Example/", "https://shop.example"),
        ("https://shop.example:443", "https://shop.example"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
    ],
)
def test_a_public_url_is_an_origin(url: str, origin: str) -> None:
    assert PublicOrigin.parse(url).url == origin


@pytest.mark.parametrize(
    "url",
    [
        "shop.example",
        "ftp://shop.example",
        "https://shop.example/shop",
        "https://shop.example/?x=1",
        "https://user@shop.example",
        "https://shop.example:0",
        "https://shop.example:70000",
        "https://",
    ],
)
def test_a_public_url_with_more_or_less_than_an_origin_refuses_to_start(url: str) -> None:
    with pytest.raises(ValueError, match="GATEWAY_PUBLIC_URL"):
        GatewaySettings(runtime=RuntimeSettings(), public_url=url)


def test_each_mode_answers_its_origin_and_returns_there() -> None:
    embedded = GatewaySettings(runtime=RuntimeSettings())
    assert embedded.public_origin.url == "http://127.0.0.1:8000"
    assert embedded.accepted_hosts == {"127.0.0.1", "localhost", "::1"}
    assert embedded.return_hosts == {"127.0.0.1", "localhost", "::1"}
    distributed = GatewaySettings(
        runtime=DISTRIBUTED,
        jwt_secret=STRONG,
        cookie_secret=STRONG,
        public_url="https://shop.example",
        allowed_hosts=["gateway.internal"],
        return_url_hosts=[f"shop.{CYRILLIC_E}xample", "Pay.Example"],
    )
    assert distributed.accepted_hosts == {"shop.example", "gateway.internal"}
    assert distributed.return_hosts == {"shop.example", "shop.xn--xample-2of", "pay.example"}
    with pytest.raises(ValueError, match="GATEWAY_PUBLIC_URL"):
        GatewaySettings(runtime=DISTRIBUTED, jwt_secret=STRONG, cookie_secret=STRONG)


async def test_the_app_sees_the_origin_whatever_the_host_said() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(f"{scope['scheme']}://{dict(scope['headers'])[b'host'].decode()}")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    wrapped = PublicOriginMiddleware(
        app,
        origin=PublicOrigin.parse("https://shop.example"),
        hosts=frozenset({"shop.example", "gateway.internal"}),
    )
    transport = httpx.ASGITransport(app=wrapped)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.internal:8000") as c:
        assert (await c.get("/api/store/cart")).status_code == 200
        for host in ("evil.example", "shop.example.evil.example", "gateway.internal:x"):
            refused = await c.get("/api/store/cart", headers={"host": host})
            assert refused.status_code == 400 and refused.json()["code"] == "invalid_host"
        # Probes pass untouched, whatever address they use.
        assert (await c.get("/healthz", headers={"host": "10.0.0.7:8000"})).status_code == 200
    assert seen == ["https://shop.example", "http://10.0.0.7:8000"]
