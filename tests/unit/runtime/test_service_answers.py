"""Only a 2xx from a service is a success (finding 10): a redirect or an informational answer is
an upstream error at the caller, never an empty success passed on to the shopper."""

from __future__ import annotations

import httpx
import pytest

from libs.runtime.http import ServiceClient
from libs.runtime.problems import ProblemError


def client_answering(status: int, headers: dict[str, str] | None = None) -> ServiceClient:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers or {}, content=b"")

    return ServiceClient(name="cart", base_url="http://cart", transport=httpx.MockTransport(answer))


@pytest.mark.parametrize("status", [301, 302, 303, 304, 307, 308])
async def test_a_redirect_from_a_service_is_an_upstream_error(status: int) -> None:
    client = client_answering(status, {"location": "http://evil.example/"})
    with pytest.raises(ProblemError) as raised:
        await client.request("PATCH", "/carts/current/lines/x")
    assert raised.value.status == 502
    assert raised.value.code == "upstream_error"
    await client.aclose()


@pytest.mark.parametrize("status", [200, 201, 204])
async def test_a_2xx_is_a_success(status: int) -> None:
    client = client_answering(status)
    assert (await client.request("GET", "/carts/current")).status_code == status
    await client.aclose()


async def test_a_page_passed_through_to_a_browser_keeps_its_redirect() -> None:
    client = client_answering(303, {"location": "https://shop.example/thanks"})
    response = await client.request("POST", "/dev-checkout/x/pay", redirects=True)
    assert (response.status_code, response.headers["location"]) == (
        303,
        "https://shop.example/thanks",
    )
    await client.aclose()
