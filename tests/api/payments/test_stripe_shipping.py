"""Shipping at Stripe: the real SDK against the strict fake. The order's shipping is one more
line item of its taxed amount, so the session's total is the order's; its address becomes
the payment's shipping details (what Radar and the receipt see)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from libs.contracts.payments import PaymentLine, ShippingAddress
from tests.api.payments.test_stripe import StripeWorld, stripe_world
from tests.unit.payments.builders import user

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

ADDRESS = ShippingAddress(
    name="Charles Babbage",
    phone="+1 416 555 0100",
    line1="100 Queen St W",
    city="Toronto",
    postal_code="M5H 2N2",
    state="ON",
    country="CA",
)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[StripeWorld]:
    async with stripe_world(tmp_path) as ready:
        yield ready


async def test_the_session_charges_shipping_and_the_payment_knows_where_it_goes(
    world: StripeWorld,
) -> None:
    shopper = user()
    # Exclusive 5 % tax: the cap is 1,800 + 90, standard shipping 490 + 25.
    lines = [
        PaymentLine(pricing_id="p-cap", name="Cap", unit_amount=1800, quantity=1, total=1890),
        PaymentLine(pricing_id="shipping", name="Standard", unit_amount=490, quantity=1, total=515),
    ]
    started = await world.pay(shopper, lines=lines, amount=2405, shipping=ADDRESS)
    [request] = world.fake.requests(method="POST", path="/v1/checkout/sessions")
    params = request.params
    assert [
        (item["price_data"]["product_data"]["name"], item["price_data"]["unit_amount"])
        for item in params["line_items"]
    ] == [("Cap", "1890"), ("Standard", "515")]
    assert params["payment_intent_data"]["shipping"] == {
        "name": "Charles Babbage",
        "phone": "+1 416 555 0100",
        "address": {
            "line1": "100 Queen St W",
            "city": "Toronto",
            "postal_code": "M5H 2N2",
            "state": "ON",
            "country": "CA",
        },
    }
    assert started["session"]["amount_total"] == started["body"]["amount"] == 2405


async def test_without_shipping_the_payment_has_no_shipping_details(world: StripeWorld) -> None:
    await world.pay(user())
    [request] = world.fake.requests(method="POST", path="/v1/checkout/sessions")
    assert "shipping" not in request.params["payment_intent_data"]
