"""A canceled order is closed for payment at Stripe, and money that reached it goes back.

Orders cancels only unpaid orders, but the shopper may pay in the moment before payments hears
of the cancel: whichever comes first, the money is refunded once and the order is never paid.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from libs.contracts.events import OrderCanceled
from services.payments import cancellations
from tests.api.payments.test_stripe import StripeWorld, delivered, stripe_world
from tests.unit.payments.builders import REFUNDED, SUCCEEDED, headers, published

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[StripeWorld]:
    async with stripe_world(tmp_path) as ready:
        yield ready


async def cancel(world: StripeWorld, paid: dict[str, Any]) -> None:
    """Deliver `orders.order.canceled.v1` for the payment's order, as the bus would."""
    body = paid["body"]
    event = OrderCanceled(
        order_id=body["order_id"],
        number=body["order_number"],
        owner=body["owner"],
        customer_id=body["customer_id"],
        currency=body["currency"],
        total=body["amount"],
        canceled_at=datetime.now(UTC),
        canceled_by="shopper",
    )
    async with world.deps.runtime.transaction() as session:
        await cancellations.order_canceled(world.deps.payments, session, event)


def refunds_at_stripe(world: StripeWorld) -> list[dict[str, Any]]:
    return [o for o in world.fake.state.objects.values() if o.get("object") == "refund"]


async def test_cancel_closes_the_open_checkout_and_refuses_a_new_one(world: StripeWorld) -> None:
    paid = await world.pay()
    await cancel(world, paid)

    assert world.fake.object(paid["session"]["id"])["status"] == "expired"
    attempt = await world.attempt(paid["payment"]["attempt_id"])
    assert attempt["status"] == "canceled"
    again = await world.http.post(
        "/payments", json={**paid["body"], "new_attempt": True}, headers=headers()
    )
    assert again.status_code == 409 and again.json()["code"] == "order_canceled"
    assert refunds_at_stripe(world) == []


async def test_money_that_lands_after_the_cancel_is_refunded(world: StripeWorld) -> None:
    paid = await world.pay()
    url = world.fake.state.webhooks.url
    world.fake.set_webhook(None)  # the shopper pays as the cancel is being handled
    report = await world.fake.state.complete_checkout_session(paid["session"]["id"])
    await cancel(world, paid)
    world.fake.set_webhook(url)
    resent = await world.fake.state.resend_event(report.event_id("checkout.session.completed"))
    assert delivered(resent) == [("checkout.session.completed", 200)]

    attempt = await world.attempt(paid["payment"]["attempt_id"])
    assert attempt["status"] == "canceled" and attempt["refund_required"] is True
    assert await published(world.deps, SUCCEEDED) == []
    intent = world.fake.object(report.object["payment_intent"])
    assert intent["amount_refunded"] == intent["amount_received"] == paid["body"]["amount"]
    [refunded] = await published(world.deps, REFUNDED)
    assert refunded["reason"] == "paid_after_canceled"


async def test_a_payment_taken_before_the_cancel_was_heard_is_refunded_once(
    world: StripeWorld,
) -> None:
    paid = await world.pay()
    report = await world.fake.state.complete_checkout_session(paid["session"]["id"])
    assert (await world.attempt(paid["payment"]["attempt_id"]))["status"] == "paid"

    await cancel(world, paid)
    await cancel(world, paid)  # heard twice: still one refund

    [refund] = refunds_at_stripe(world)
    assert refund["amount"] == paid["body"]["amount"] and refund["status"] == "succeeded"
    intent = world.fake.object(report.object["payment_intent"])
    assert intent["amount_refunded"] == paid["body"]["amount"]
    [refunded] = await published(world.deps, REFUNDED)
    assert refunded["reason"] == "paid_after_canceled"
    assert refunded["attempt_id"] == paid["payment"]["attempt_id"]
