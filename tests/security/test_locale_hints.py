"""Accept-Language is a hint (finding 8): whatever a client's system sends, a shopper can shop."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.e2e.helpers import billing, one_off_price
from tests.security.conftest import CHECKOUT

POSIX_STYLE = ["de_DE.UTF-8", "en_US.utf8", "de@euro", "de_DE.UTF-8@euro, fr;q=0.5", "C.UTF-8"]


@pytest.mark.parametrize("header", POSIX_STYLE)
async def test_a_posix_style_accept_language_never_fails_a_shopper(
    shopper: Callable[..., httpx.AsyncClient], header: str
) -> None:
    http = shopper(**{"accept-language": header})
    price = await one_off_price(http)
    added = await http.post("/api/store/cart/lines", json={"pricing_id": price["id"]})
    assert added.status_code == 200, added.text
    cart = await http.get("/api/store/cart")
    assert cart.status_code == 200, cart.text
    assert [line["pricing_id"] for line in cart.json()["lines"]] == [price["id"]]
    created = await http.post("/api/payments/billing", json=billing(name="Posix Shopper"))
    assert created.status_code == 201, created.text
    checkout = await http.post("/api/store/checkout", json=CHECKOUT)
    assert checkout.status_code == 200, checkout.text
    order = checkout.json()["order"]
    assert order["total"] == cart.json()["total"] + order["details"]["shipping"]["total"]
