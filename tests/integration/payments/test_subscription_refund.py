"""A subscription bought twice for one order: the extra one is canceled and its first invoice
refunded at Stripe, once, however often the refund is retried. The payments app on real
PostgreSQL, the real stripe SDK against the fake Stripe, webhooks signed as Stripe signs them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.payments.stripe_provider import HANDLED
from tests.api.payments.test_stripe import StripeWorld, reconcile, stripe_world
from tests.fakes.stripe_server import JSON
from tests.unit.payments.builders import (
    ACTIVATED,
    REFUND_FAILED,
    REFUND_SUCCEEDED,
    REFUNDED,
    headers,
    published,
)

pytestmark = [
    pytest.mark.integration,
    # The SDK's httpx client posts form bodies with `data=`; httpx deprecates that, harmlessly.
    pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning"),
]


@contextlib.asynccontextmanager
async def world_on_postgres(tmp_path: Path, database_url: str) -> AsyncIterator[StripeWorld]:
    # Reconciliation only when a test asks for it, and never for the sessions themselves.
    async with stripe_world(tmp_path, database_url=database_url, reconcile_after_s=3600) as ready:
        yield ready


async def bought_twice(world: StripeWorld, *, only: str | None = None) -> dict[str, Any]:
    """One order, two subscription checkouts, both paid before Stripe's webhooks arrive; then
    their events (or `only` those of one type) in the order that makes the first the extra."""
    first = await world.pay(recurring=True)
    url = world.fake.state.webhooks.url
    world.fake.set_webhook(None)  # webhooks are late: the shopper pays the first tab...
    one = await world.fake.state.complete_checkout_session(first["session"]["id"])
    # ...while the other tab starts a new checkout: the old session can no longer be expired.
    second = await world.pay(
        first["shopper"],
        customer_id=first["body"]["customer_id"],
        order_id=first["body"]["order_id"],
        recurring=True,
        new_attempt=True,
    )
    two = await world.fake.state.complete_checkout_session(second["session"]["id"])
    world.fake.set_webhook(url)
    for report in (two, one):
        for delivery in report.deliveries:
            if only is None or delivery.event_type == only:
                await world.fake.state.resend_event(delivery.event_id)
    await world.fake.wait_for_deliveries()
    return {
        "shopper": first["shopper"],
        "kept": world.fake.object(two.object["subscription"]),
        "extra": world.fake.object(one.object["subscription"]),
        "extra_attempt": first["payment"]["attempt_id"],
        "paid_attempt": second["payment"]["attempt_id"],
    }


def refunds_at_stripe(world: StripeWorld) -> list[JSON]:
    return [o for o in world.fake.state.objects.values() if o.get("object") == "refund"]


def first_invoice_intent(world: StripeWorld, subscription: JSON) -> JSON:
    """The PaymentIntent that paid a subscription's first invoice."""
    [payment] = [
        o
        for o in world.fake.state.objects.values()
        if o.get("object") == "invoice_payment"
        and o["invoice"] == world.fake.object(subscription["latest_invoice"])["id"]
    ]
    return world.fake.object(payment["payment"]["payment_intent"])


async def store_refunds(world: StripeWorld, status: str | None = None) -> list[dict[str, Any]]:
    query = f"?status={status}" if status else ""
    response = await world.http.get(f"/refunds{query}", headers=headers())
    assert response.status_code == 200, response.text
    return list(response.json())


async def test_the_extra_subscription_is_canceled_and_its_first_invoice_refunded(
    tmp_path: Path, pg_database_url: str
) -> None:
    async with world_on_postgres(tmp_path, pg_database_url) as world:
        bought = await bought_twice(world)

        assert (await world.attempt(bought["paid_attempt"]))["status"] == "paid"
        assert world.fake.object(bought["kept"]["id"])["status"] == "active"
        assert world.fake.object(bought["extra"]["id"])["status"] == "canceled"
        [refund] = refunds_at_stripe(world)
        extra_intent = first_invoice_intent(world, bought["extra"])
        assert refund["payment_intent"] == extra_intent["id"]
        assert refund["amount"] == extra_intent["amount_refunded"] == extra_intent["amount"]
        assert first_invoice_intent(world, bought["kept"]).get("amount_refunded", 0) == 0
        [done] = await store_refunds(world)
        assert done["status"] == "succeeded" and done["provider_refund_id"] == refund["id"]
        assert done["attempt_id"] == bought["extra_attempt"]
        [announced] = await published(world.deps, REFUNDED)
        assert announced["provider_refund_id"] == refund["id"]
        [succeeded] = await published(world.deps, REFUND_SUCCEEDED)
        assert (succeeded["refund_id"], succeeded["provider_refund_id"]) == (
            done["id"],
            refund["id"],
        )
        assert await published(world.deps, REFUND_FAILED) == []
        # The shopper has one subscription in Store, the one Stripe keeps billing.
        mine = (await world.http.get("/subscriptions", headers=headers(bought["shopper"]))).json()
        assert [s["status"] for s in mine] == ["active"]
        assert len(await published(world.deps, ACTIVATED)) == 1


@pytest.mark.parametrize("lost", ["rate_limited", "answer_lost", "answer_and_webhook_lost"])
async def test_a_retry_after_the_cancel_refunds_exactly_once(
    tmp_path: Path, pg_database_url: str, lost: str
) -> None:
    """The cancel went through, the refund call failed once (rate limited before Stripe did
    anything, or done at Stripe with its answer lost, and maybe its webhook too): the refund
    happens once, settled by its webhook or by the next run."""
    async with world_on_postgres(tmp_path, pg_database_url) as world:
        if lost == "answer_and_webhook_lost":
            world.fake.state.enabled_events = set(HANDLED) - {"refund.created"}
        if lost == "rate_limited":
            world.fake.state.fail_next("POST", "/v1/refunds", status=429)
        else:
            world.fake.state.fail_next("POST", "/v1/refunds", status=500, after_handling=True)
        # One report of each checkout's money: the refund is tried once, then left pending.
        bought = await bought_twice(world, only="checkout.session.completed")

        assert world.fake.object(bought["extra"]["id"])["status"] == "canceled"
        [pending] = await store_refunds(world)
        world.deps.reconciler.interval = timedelta(0)
        # Due a minute after the failed try.
        world.deps.reconciler.clock = lambda: datetime.now(UTC) + timedelta(minutes=1, seconds=1)
        if lost != "answer_lost":
            assert pending["status"] == "pending" and pending["last_error"]
            assert len(refunds_at_stripe(world)) == (0 if lost == "rate_limited" else 1)
            assert (await reconcile(world))["refunds_retried"] == 1
        else:
            # Done at Stripe: its `refund.created` webhook names Store's refund and settles it,
            # so reconciliation has nothing left to send (whether the webhook came before or
            # after the lost answer was noted as a try).
            assert pending["status"] == "succeeded" and pending["next_try_at"] is None
            assert (await reconcile(world))["refunds_retried"] == 0
        [refund] = refunds_at_stripe(world)
        [done] = await store_refunds(world, "succeeded")
        assert done["id"] == pending["id"] and done["provider_refund_id"] == refund["id"]
        extra_intent = first_invoice_intent(world, bought["extra"])
        assert extra_intent["amount_refunded"] == extra_intent["amount"] == refund["amount"]
        assert world.fake.object(bought["kept"]["id"])["status"] == "active"
        deletes = world.fake.requests(
            method="DELETE", path=f"/v1/subscriptions/{bought['extra']['id']}"
        )
        creates = world.fake.requests(method="POST", path="/v1/refunds")
        if lost == "answer_lost":
            assert [r.status for r in deletes] == [200]
            assert len(creates) == 1
        else:
            # The subscription was canceled once; the retry's DELETE was answered 404.
            assert [r.status for r in deletes] == [200, 404]
            # Both creates carried the Store refund's own key: a lost answer is replayed.
            assert [r.idempotency_key for r in creates] == [f"store-refund-{pending['id']}"] * 2
            assert [r.replayed for r in creates] == [False, lost == "answer_and_webhook_lost"]
        assert len(await published(world.deps, REFUNDED)) == 1
        # Another run finds nothing left to do.
        assert (await reconcile(world))["refunds_retried"] == 0
        assert len(refunds_at_stripe(world)) == 1
