"""A refund lives until Stripe settles it: pending refunds wait for their webhook (or for
reconciliation, when that webhook is lost), failed ones are announced and alerted on, a refund
Stripe refuses fails at once, and retries are bounded. The payments app on the fake Stripe
through the real SDK, webhooks signed as Stripe signs them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from services.payments.stripe_provider import HANDLED
from tests.api.payments.test_stripe import StripeWorld, reconcile, stripe_world
from tests.fakes.stripe_server import JSON
from tests.unit.payments.builders import (
    REFUND_FAILED,
    REFUND_SUCCEEDED,
    REFUNDED,
    headers,
    published,
)

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


async def paid_twice(
    world: StripeWorld, *, before_refund: Callable[[JSON], Any] | None = None
) -> dict[str, Any]:
    """One order paid through two checkouts (the second tab's webhook first): the first
    session's money must go back. `before_refund` sees its PaymentIntent before Store does."""
    first = await world.pay()
    url = world.fake.state.webhooks.url
    world.fake.set_webhook(None)
    one = await world.fake.state.complete_checkout_session(first["session"]["id"])
    second = await world.pay(
        first["shopper"],
        customer_id=first["body"]["customer_id"],
        order_id=first["body"]["order_id"],
        new_attempt=True,
    )
    two = await world.fake.state.complete_checkout_session(second["session"]["id"])
    intent = world.fake.object(one.object["payment_intent"])
    if before_refund is not None:
        await before_refund(intent)
    world.fake.set_webhook(url)
    await world.fake.state.resend_event(two.event_id("checkout.session.completed"))
    await world.fake.state.resend_event(one.event_id("checkout.session.completed"))
    await world.fake.wait_for_deliveries()
    return {"intent": intent, "attempt_id": first["payment"]["attempt_id"]}


async def store_refunds(world: StripeWorld, status: str | None = None) -> list[dict[str, Any]]:
    query = f"?status={status}" if status else ""
    response = await world.http.get(f"/refunds{query}", headers=headers())
    assert response.status_code == 200, response.text
    return list(response.json())


def stripe_refunds(world: StripeWorld) -> list[JSON]:
    return [o for o in world.fake.state.objects.values() if o.get("object") == "refund"]


def later(delta: timedelta) -> Callable[[], datetime]:
    return lambda: datetime.now(UTC) + delta


def failed_count(reason: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "store_payments_refunds_failed_total", {"reason": reason, "status": status}
    )
    return value or 0.0


async def test_a_pending_refund_succeeds_when_its_webhook_says_so(tmp_path: Path) -> None:
    async with stripe_world(tmp_path) as world:
        world.fake.state.refund_status = "pending"
        paid = await paid_twice(world)

        [pending] = await store_refunds(world)
        [at_stripe] = stripe_refunds(world)
        assert (pending["status"], pending["provider_refund_id"]) == ("pending", at_stripe["id"])
        assert await published(world.deps, REFUND_SUCCEEDED) == []
        assert await published(world.deps, REFUNDED) == []
        # A second payment of a paid order is what Stripe calls a duplicate.
        [create] = world.fake.requests(method="POST", path="/v1/refunds")
        assert create.params["reason"] == "duplicate"
        assert create.params["metadata"]["refund_id"] == pending["id"]

        report = await world.fake.state.settle_refund(at_stripe["id"], "succeeded")
        await world.fake.state.resend_event(report.event_id("refund.updated"))  # redelivered

        [done] = await store_refunds(world, "succeeded")
        assert done["id"] == pending["id"] and done["failure_reason"] is None
        [event] = await published(world.deps, REFUND_SUCCEEDED)
        assert (event["refund_id"], event["attempt_id"]) == (pending["id"], paid["attempt_id"])
        assert (event["amount"], event["currency"], event["reason"]) == (
            2500,
            "EUR",
            "order_already_paid",
        )
        assert len(await published(world.deps, REFUNDED)) == 1


async def test_a_refund_that_fails_at_stripe_is_failed_announced_and_counted(
    tmp_path: Path,
) -> None:
    async with stripe_world(tmp_path) as world:
        world.fake.state.refund_status = "pending"
        await paid_twice(world)
        [at_stripe] = stripe_refunds(world)
        before = failed_count("order_already_paid", "failed")

        await world.fake.state.settle_refund(
            at_stripe["id"], "failed", failure_reason="expired_or_canceled_card"
        )

        [failed] = await store_refunds(world, "failed")
        assert failed["failure_reason"] == "expired_or_canceled_card"
        [event] = await published(world.deps, REFUND_FAILED)
        assert (event["status"], event["failure_reason"]) == ("failed", "expired_or_canceled_card")
        assert await published(world.deps, REFUND_SUCCEEDED) == []
        assert failed_count("order_already_paid", "failed") == before + 1
        # The end is final: reconciliation neither sends it again nor counts it as work.
        world.deps.reconciler.interval = timedelta(0)
        world.deps.reconciler.clock = later(timedelta(hours=2))
        assert await reconcile(world) == {
            "checked": 0,
            "settled": 0,
            "refunds_retried": 0,
            "errors": 0,
            "subscriptions_checked": 0,
            "renewals_recorded": 0,
        }
        assert len(world.fake.requests(method="POST", path="/v1/refunds")) == 1


async def test_a_pending_refund_whose_webhook_is_lost_is_settled_by_reconciliation(
    tmp_path: Path,
) -> None:
    async with stripe_world(tmp_path) as world:
        world.fake.state.refund_status = "pending"
        await paid_twice(world)
        [at_stripe] = stripe_refunds(world)
        # The endpoint is not subscribed to refund updates: Stripe never tells Store.
        world.fake.state.enabled_events = set(HANDLED) - {"refund.updated", "refund.failed"}
        await world.fake.state.settle_refund(at_stripe["id"], "succeeded")
        assert [r["status"] for r in await store_refunds(world)] == ["pending"]

        world.deps.reconciler.interval = timedelta(0)
        world.deps.reconciler.clock = later(timedelta(hours=1, minutes=1))
        assert (await reconcile(world))["refunds_retried"] == 1

        assert [r["status"] for r in await store_refunds(world)] == ["succeeded"]
        [asked] = world.fake.requests(method="GET", path=f"/v1/refunds/{at_stripe['id']}")
        assert asked.status == 200
        assert len(await published(world.deps, REFUND_SUCCEEDED)) == 1
        # Asking is not sending: Stripe holds one refund.
        assert len(stripe_refunds(world)) == 1


async def test_a_refund_stripe_refuses_fails_at_once(tmp_path: Path) -> None:
    async with stripe_world(tmp_path) as world:
        world.fake.state.fail_next("POST", "/v1/refunds", status=400)
        await paid_twice(world)

        [failed] = await store_refunds(world)
        assert failed["status"] == "failed" and failed["failure_reason"].startswith("refused: ")
        [event] = await published(world.deps, REFUND_FAILED)
        assert event["status"] == "failed"
        assert stripe_refunds(world) == []


async def test_retries_are_bounded_then_the_refund_fails_for_good(tmp_path: Path) -> None:
    async with stripe_world(tmp_path, refund_max_tries=3) as world:

        async def stripe_refuses_every_call(intent: JSON) -> None:
            world.fake.state.api_key_prefix = "sk_revoked_"

        await paid_twice(world, before_refund=stripe_refuses_every_call)
        world.deps.reconciler.interval = timedelta(0)
        runs = []
        for hours in (1, 2, 3, 4):
            world.deps.reconciler.clock = later(timedelta(hours=hours))
            runs.append(await reconcile(world))

        # The first try came with the payment; two retries, then failed for good.
        assert [r["refunds_retried"] for r in runs] == [1, 1, 0, 0]
        assert [r["errors"] for r in runs] == [1, 1, 0, 0]
        [failed] = await store_refunds(world)
        assert failed["status"] == "failed" and failed["tries"] == 3
        assert failed["failure_reason"].startswith("retries_exhausted: ")
        assert len(await published(world.deps, REFUND_FAILED)) == 1


async def test_waits_between_retries_double(tmp_path: Path) -> None:
    async with stripe_world(tmp_path) as world:

        async def stripe_refuses_every_call(intent: JSON) -> None:
            world.fake.state.api_key_prefix = "sk_revoked_"

        await paid_twice(world, before_refund=stripe_refuses_every_call)
        world.deps.reconciler.interval = timedelta(0)
        waits = []
        for _ in range(3):
            [pending] = await store_refunds(world)
            due = datetime.fromisoformat(pending["next_try_at"])
            waits.append(
                round((due - datetime.fromisoformat(pending["updated_at"])).total_seconds())
            )
            world.deps.reconciler.clock = later(due - datetime.now(UTC) + timedelta(seconds=1))
            assert (await reconcile(world))["refunds_retried"] == 1
        assert waits == [60, 120, 240]


async def test_a_charge_refunded_already_means_the_refund_is_done(tmp_path: Path) -> None:
    async with stripe_world(tmp_path) as world:

        async def refunded_in_the_dashboard(intent: JSON) -> None:
            await world.fake.client().v1.refunds.create_async({"payment_intent": intent["id"]})

        await paid_twice(world, before_refund=refunded_in_the_dashboard)

        [done] = await store_refunds(world)
        assert done["status"] == "succeeded"
        [refused] = [
            r
            for r in world.fake.requests(method="POST", path="/v1/refunds")
            if r.idempotency_key and r.idempotency_key.startswith("store-refund-")
        ]
        assert refused.status == 400
        assert len(stripe_refunds(world)) == 1  # the money went back once
        assert len(await published(world.deps, REFUND_SUCCEEDED)) == 1
