"""Operator refunds at the fake Stripe through the real SDK: each part is a Stripe refund of
that amount that ends `succeeded`; the third is 409 `refund_exceeds_paid`; a refund made in the
Dashboard is recorded once and announced; an operator's refund of a subscription keeps it."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.api.payments.test_stripe import StripeWorld, stripe_world
from tests.api.payments.test_stripe_refunds import store_refunds, stripe_refunds
from tests.unit.payments.builders import REFUND_SUCCEEDED, headers, published

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


async def paid(world: StripeWorld, **overrides: Any) -> dict[str, Any]:
    started = await world.pay(**overrides)
    await world.fake.state.complete_checkout_session(started["session"]["id"])
    await world.fake.wait_for_deliveries()
    assert (await world.attempt(started["payment"]["attempt_id"]))["status"] == "paid"
    return started


async def refund(world: StripeWorld, order_id: str, **body: Any) -> Any:
    return await world.http.post(
        f"/admin/orders/{order_id}/refunds",
        json={"reason": "goodwill", "idempotency_key": str(uuid.uuid4()), "actor": "op", **body},
        headers=headers(),
    )


async def test_a_third_then_the_rest_each_succeeded_at_stripe(tmp_path: Path) -> None:
    async with stripe_world(tmp_path) as world:
        started = await paid(world)
        order_id, total = started["body"]["order_id"], started["body"]["amount"]
        third = await refund(world, order_id, amount=total // 3)
        assert third.status_code == 201, third.text
        rest = await refund(world, order_id)
        assert rest.status_code == 201, rest.text
        again = await refund(world, order_id)
        assert again.status_code == 409
        assert again.json()["code"] == "refund_exceeds_paid"
        assert (again.json()["paid"], again.json()["refunded"]) == (total, total)
        await world.fake.wait_for_deliveries()

        at_stripe = sorted(r["amount"] for r in stripe_refunds(world))
        assert at_stripe == sorted([total // 3, total - total // 3])
        assert {r["status"] for r in stripe_refunds(world)} == {"succeeded"}
        assert {r["reason"] for r in stripe_refunds(world)} == {"requested_by_customer"}
        mine = [r for r in await store_refunds(world) if r["order_id"] == order_id]
        assert sorted((r["amount"], r["status"], r["reason"]) for r in mine) == sorted(
            [(total // 3, "succeeded", "operator"), (total - total // 3, "succeeded", "operator")]
        )
        events = await published(world.deps, REFUND_SUCCEEDED)
        assert sorted(e["amount"] for e in events) == at_stripe
        assert {(e["actor"], e["note"]) for e in events} == {("op", "goodwill")}


async def test_a_dashboard_refund_is_recorded_once_and_counts(tmp_path: Path) -> None:
    async with stripe_world(tmp_path) as world:
        started = await paid(world)
        order_id, total = started["body"]["order_id"], started["body"]["amount"]
        intent = world.fake.object(
            world.session_of(started["payment"]["checkout_url"])["payment_intent"]
        )
        made = await world.fake.client().v1.refunds.create_async(
            {"payment_intent": intent["id"], "amount": 500}
        )
        await world.fake.wait_for_deliveries()
        for event in [e for e in world.fake.state.events if e["type"].startswith("refund.")]:
            await world.fake.state.resend_event(event["id"])  # redelivered
        mine = [r for r in await store_refunds(world) if r["order_id"] == order_id]
        assert [(r["reason"], r["amount"], r["status"], r["provider_refund_id"]) for r in mine] == [
            ("provider_dashboard", 500, "succeeded", made.id)
        ]
        [event] = await published(world.deps, REFUND_SUCCEEDED)
        assert (event["reason"], event["order_id"], event["amount"]) == (
            "provider_dashboard",
            order_id,
            500,
        )
        rest = await refund(world, order_id)
        assert (rest.status_code, rest.json()["amount"]) == (201, total - 500)


async def test_an_operator_refund_of_a_subscription_keeps_it_running(tmp_path: Path) -> None:
    async with stripe_world(tmp_path) as world:
        started = await paid(world, recurring=True)
        order_id = started["body"]["order_id"]
        stripe_id = world.fake.object(started["session"]["id"])["subscription"]
        answer = await refund(world, order_id, amount=1000)
        assert answer.status_code == 201, answer.text
        await world.fake.wait_for_deliveries()
        assert world.fake.object(stripe_id)["status"] == "active"
        assert not world.fake.requests(method="DELETE", path=f"/v1/subscriptions/{stripe_id}")
        [made] = stripe_refunds(world)
        assert (made["amount"], made["status"]) == (1000, "succeeded")
        [mine] = [r for r in await store_refunds(world) if r["order_id"] == order_id]
        assert (mine["status"], mine["amount"]) == ("succeeded", 1000)
