"""Dunning is visible: a renewal Stripe cannot charge, or one the shopper's bank wants
confirmed, makes the subscription past due and announces it once per invoice with the link
where the shopper pays; Smart Retries' repeated failures announce nothing new. The payments app
on the fake Stripe through the real SDK, webhooks signed as Stripe signs them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.payments.test_stripe import StripeWorld, delivered, stripe_world
from tests.unit.payments.builders import RENEWED, headers, published, user

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

PAST_DUE = "payments.subscription.past_due.v1"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[StripeWorld]:
    async with stripe_world(tmp_path) as ready:
        yield ready


async def subscribed(world: StripeWorld) -> dict[str, Any]:
    paid = await world.pay(recurring=True)
    await world.fake.state.complete_checkout_session(paid["session"]["id"])
    [subscription] = (
        await world.http.get("/subscriptions", headers=headers(paid["shopper"]))
    ).json()
    assert subscription["status"] == "active"
    return {
        "shopper": paid["shopper"],
        "id": subscription["id"],
        "order_id": paid["body"]["order_id"],
        "stripe_id": world.fake.object(paid["session"]["id"])["subscription"],
    }


async def status_of(world: StripeWorld, bought: dict[str, Any]) -> str:
    [subscription] = (
        await world.http.get("/subscriptions", headers=headers(bought["shopper"]))
    ).json()
    return str(subscription["status"])


async def test_a_failed_renewal_is_past_due_announced_once_with_the_invoice_link(
    world: StripeWorld,
) -> None:
    bought = await subscribed(world)

    failed = await world.fake.state.fail_renewal(bought["stripe_id"])
    assert ("invoice.payment_failed", 200) in delivered(failed)
    await world.fake.state.retry_failed_renewal(bought["stripe_id"])  # Smart Retries, again
    await world.fake.state.resend_event(failed.event_id("invoice.payment_failed"))

    assert await status_of(world, bought) == "past_due"
    [event] = await published(world.deps, PAST_DUE)
    invoice = world.fake.object(world.fake.object(bought["stripe_id"])["latest_invoice"])
    assert (event["subscription_id"], event["order_id"]) == (bought["id"], bought["order_id"])
    assert (event["reason"], event["invoice_reference"]) == ("payment_failed", invoice["id"])
    assert event["hosted_invoice_url"] == invoice["hosted_invoice_url"]
    assert (event["amount_due"], event["currency"]) == (2500, "EUR")
    assert event["next_payment_attempt"] is not None
    assert event["owner"] == bought["shopper"].owner.model_dump(mode="json")
    assert await published(world.deps, RENEWED) == []


async def test_a_renewal_waiting_for_the_bank_is_past_due_with_its_reason(
    world: StripeWorld,
) -> None:
    bought = await subscribed(world)

    report = await world.fake.state.require_action_on_renewal(bought["stripe_id"])
    assert ("invoice.payment_action_required", 200) in delivered(report)

    assert await status_of(world, bought) == "past_due"
    [event] = await published(world.deps, PAST_DUE)
    assert event["reason"] == "action_required" and event["hosted_invoice_url"]


async def test_paying_the_past_due_invoice_makes_it_active_again(world: StripeWorld) -> None:
    bought = await subscribed(world)
    await world.fake.state.fail_renewal(bought["stripe_id"])
    assert await status_of(world, bought) == "past_due"

    await world.fake.state.renew_subscription(bought["stripe_id"])

    assert await status_of(world, bought) == "active"
    assert len(await published(world.deps, PAST_DUE)) == 1
    assert len(await published(world.deps, RENEWED)) == 1


async def test_the_portal_is_stripes_for_the_subscriptions_customer_and_its_owner_only(
    world: StripeWorld,
) -> None:
    bought = await subscribed(world)
    body = {"return_url": "https://shop.example/shop/"}

    response = await world.http.post(
        f"/subscriptions/{bought['id']}/portal", json=body, headers=headers(bought["shopper"])
    )

    assert response.status_code == 200, response.text
    assert response.json()["url"].startswith("https://billing.stripe.test/p/session/")
    [created] = world.fake.requests(method="POST", path="/v1/billing_portal/sessions")
    stripe_customer = world.fake.object(bought["stripe_id"])["customer"]
    assert created.params == {"customer": stripe_customer, "return_url": body["return_url"]}
    stranger = await world.http.post(
        f"/subscriptions/{bought['id']}/portal", json=body, headers=headers(user())
    )
    assert stranger.status_code == 404
    assert len(world.fake.requests(method="POST", path="/v1/billing_portal/sessions")) == 1
