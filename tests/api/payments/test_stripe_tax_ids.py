"""The shopper's VAT id reaches Stripe as the customer's tax id (it shows on Stripe's invoices
and receipts); one Stripe cannot take never blocks the checkout."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from services.payments.stripe_provider import stripe_tax_ids
from tests.api.payments.test_stripe import StripeWorld, stripe_world
from tests.unit.payments.builders import billing, headers, start_payment, user

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[StripeWorld]:
    async with stripe_world(tmp_path) as ready:
        yield ready


async def pay_as(world: StripeWorld, details: dict[str, Any]) -> dict[str, Any]:
    shopper = user()
    response = await world.http.post("/customers", json=details, headers=headers(shopper))
    assert response.status_code == 201, response.text
    body = start_payment(owner=shopper.owner, customer_id=response.json()["id"])  # type: ignore[arg-type]
    paid = await world.http.post("/payments", json=body.model_dump(mode="json"), headers=headers())
    assert paid.status_code == 201, paid.text
    session = world.session_of(paid.json()["checkout_url"])
    return world.fake.object(session["customer"])


async def test_a_vat_id_becomes_the_stripe_customers_tax_id(world: StripeWorld) -> None:
    customer = await pay_as(world, billing("DE", vat_id="DE 123 456 789"))
    [tax_id] = customer["tax_ids"]["data"]
    assert (tax_id["type"], tax_id["value"]) == ("eu_vat", "DE123456789")
    assert customer["metadata"]["vat_id"] == "DE123456789"


async def test_a_vat_id_stripe_refuses_does_not_block_the_checkout(world: StripeWorld) -> None:
    # Store takes 2-13 characters after GB; Stripe's gb_vat wants 9 or 12 digits.
    customer = await pay_as(
        world, billing("GB", vat_id="GB12AB", address={"postal_code": "N1 9GU"})
    )
    assert customer["tax_ids"]["data"] == []
    assert customer["metadata"]["vat_id"] == "GB12AB"


def test_the_tax_id_type_follows_the_country() -> None:
    assert stripe_tax_ids("FR40303265045", "FR") == [{"type": "eu_vat", "value": "FR40303265045"}]
    assert stripe_tax_ids("EL123456789", "GR")[0]["type"] == "eu_vat"
    assert stripe_tax_ids("XI123456789", "GB")[0]["type"] == "eu_vat"
    assert stripe_tax_ids("GB123456789", "GB")[0]["type"] == "gb_vat"
    assert stripe_tax_ids("CHE123456789MWST", "CH")[0]["type"] == "ch_vat"
    assert stripe_tax_ids("123456789", "US") == []
    assert stripe_tax_ids(None, "DE") == []
