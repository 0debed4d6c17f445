"""Renewals on the Stripe path: each paid renewal invoice is announced once, with why it was
billed, and one whose webhook was lost is recorded by reconciliation (the real SDK against the
fake Stripe, which lists invoices as strictly as the rest of its API)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from libs.contracts.payments import PaymentLine
from services.payments.tables import subscriptions
from tests.api.payments.test_stripe import StripeWorld, reconcile, stripe_world
from tests.unit.payments.builders import RENEWED, headers, published

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[StripeWorld]:
    async with stripe_world(tmp_path) as ready:
        yield ready


async def subscribed(world: StripeWorld) -> dict[str, Any]:
    """A paid subscription checkout; its Stripe id and the shopper."""
    paid = await world.pay(recurring=True)
    await world.fake.state.complete_checkout_session(paid["session"]["id"])
    paid["stripe_id"] = world.fake.object(paid["session"]["id"])["subscription"]
    return paid


async def renewals_of(world: StripeWorld, paid: dict[str, Any]) -> int:
    [subscription] = (
        await world.http.get("/subscriptions", headers=headers(paid["shopper"]))
    ).json()
    return int(subscription["renewals"])


async def ask_again_now(world: StripeWorld) -> None:
    """The subscriptions' leases are over (as they are an hour later)."""
    async with world.deps.runtime.transaction() as session:
        await session.execute(subscriptions.update().values(renewals_checked_at=None))


async def test_a_renewal_carries_why_it_was_billed_and_when_it_was_paid(
    world: StripeWorld,
) -> None:
    paid = await subscribed(world)
    await world.fake.state.renew_subscription(paid["stripe_id"])
    [renewed] = await published(world.deps, RENEWED)
    assert renewed["billing_reason"] == "subscription_cycle"
    assert renewed["renewed_at"] is not None and renewed["invoice_reference"].startswith("in_")


async def test_shipping_that_recurs_is_charged_by_stripe_each_period(world: StripeWorld) -> None:
    # What the gateway sends for a subscription to goods that ship: the shipping recurs too.
    lines = [
        PaymentLine(
            pricing_id="coffee", name="Coffee", unit_amount=1200, quantity=1, interval="month"
        ),
        PaymentLine(
            pricing_id="shipping",
            name="Standard",
            unit_amount=490,
            quantity=1,
            total=583,  # exclusive tax
            interval="month",
        ),
    ]
    paid = await world.pay(lines=lines, amount=1200 + 583)
    await world.fake.state.complete_checkout_session(paid["session"]["id"])
    [request] = world.fake.requests(method="POST", path="/v1/checkout/sessions")
    items = request.params["line_items"]
    assert [item["price_data"]["recurring"]["interval"] for item in items] == ["month", "month"]
    stripe_id = world.fake.object(paid["session"]["id"])["subscription"]

    await world.fake.state.renew_subscription(stripe_id)

    [renewed] = await published(world.deps, RENEWED)
    assert renewed["amount"] == 1200 + 583


async def test_a_lost_renewal_webhook_is_recorded_by_one_reconciliation_run(
    tmp_path: Path,
) -> None:
    async with stripe_world(tmp_path, reconcile_after_s=3600) as world:
        paid = await subscribed(world)
        await world.fake.state.renew_subscription(paid["stripe_id"])  # delivered
        world.fake.set_webhook(None)  # every webhook from now on is lost
        await world.fake.state.renew_subscription(paid["stripe_id"])
        assert len(await published(world.deps, RENEWED)) == 1

        ran = await reconcile(world)

        assert (ran["subscriptions_checked"], ran["renewals_recorded"]) == (1, 1)
        assert ran["errors"] == 0
        renewals = await published(world.deps, RENEWED)
        assert len(renewals) == 2 and renewals[0] != renewals[1]
        assert len({r["invoice_reference"] for r in renewals}) == 2
        assert await renewals_of(world, paid) == 2
        [listed, *_] = world.fake.requests(method="GET", path="/v1/invoices")
        assert listed.params["subscription"] == paid["stripe_id"]
        assert listed.params["status"] == "paid" and "gt" in listed.params["created"]

        # Leased: the next run does not ask; asked again, nothing new is recorded.
        assert (await reconcile(world))["subscriptions_checked"] == 0
        await ask_again_now(world)
        again = await reconcile(world)
        assert (again["subscriptions_checked"], again["renewals_recorded"]) == (1, 0)
        assert len(await published(world.deps, RENEWED)) == 2
        assert await renewals_of(world, paid) == 2


async def test_a_canceled_subscription_is_not_asked_about(tmp_path: Path) -> None:
    async with stripe_world(tmp_path, reconcile_after_s=3600) as world:
        paid = await subscribed(world)
        async with world.deps.runtime.transaction() as session:
            await session.execute(subscriptions.update().values(status="canceled"))
        assert (await reconcile(world))["subscriptions_checked"] == 0
        assert world.fake.requests(method="GET", path="/v1/invoices") == []
        del paid


def test_the_look_back_covers_late_paid_invoices() -> None:
    from services.payments.reconcile import RENEWALS_LOOK_BACK

    assert RENEWALS_LOOK_BACK >= timedelta(days=31)
