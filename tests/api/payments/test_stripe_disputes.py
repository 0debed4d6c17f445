"""Disputes reach Store: a disputed payment is recorded against its order and announced once
when it opens and once when it ends, whatever order Stripe's events come in and however often;
an operator is alerted. The payments app on the fake Stripe, webhooks signed as Stripe signs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from tests.api.payments.test_stripe import StripeWorld, stripe_world
from tests.unit.payments.builders import headers, published

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

OPENED = "payments.dispute.opened.v1"
CLOSED = "payments.dispute.closed.v1"


async def paid(world: StripeWorld) -> dict[str, Any]:
    """A paid one-time order: its attempt, order and PaymentIntent."""
    payment = await world.pay()
    report = await world.fake.state.complete_checkout_session(payment["session"]["id"])
    await world.fake.wait_for_deliveries()
    assert (await world.attempt(payment["payment"]["attempt_id"]))["status"] == "paid"
    return {
        "attempt_id": payment["payment"]["attempt_id"],
        "order_id": payment["body"]["order_id"],
        "intent": report.object["payment_intent"],
    }


async def disputes(world: StripeWorld, **query: Any) -> list[dict[str, Any]]:
    response = await world.http.get("/disputes", params=query, headers=headers())
    assert response.status_code == 200, response.text
    return list(response.json())


def opened_count(reason: str) -> float:
    value = REGISTRY.get_sample_value("store_payments_disputes_opened_total", {"reason": reason})
    return value or 0.0


async def test_a_dispute_is_recorded_against_its_order_and_announced_once(
    tmp_path: Path,
) -> None:
    async with stripe_world(tmp_path) as world:
        order = await paid(world)
        before = opened_count("product_not_received")

        report = await world.fake.state.open_dispute(order["intent"], reason="product_not_received")
        await world.fake.state.resend_event(report.event_id("charge.dispute.created"))

        [dispute] = await disputes(world, open="true")
        assert (dispute["order_id"], dispute["attempt_id"]) == (
            order["order_id"],
            order["attempt_id"],
        )
        assert (dispute["amount"], dispute["currency"], dispute["status"]) == (
            2500,
            "EUR",
            "needs_response",
        )
        due = datetime.fromisoformat(dispute["evidence_due_by"])
        assert int(due.timestamp()) == report.object["evidence_details"]["due_by"]
        [event] = await published(world.deps, OPENED)
        assert (event["order_id"], event["provider_dispute_id"]) == (
            order["order_id"],
            report.object["id"],
        )
        assert event["evidence_due_by"] is not None
        assert opened_count("product_not_received") == before + 1
        assert await published(world.deps, CLOSED) == []


async def test_a_dispute_that_ends_is_announced_closed_once_and_never_reopens(
    tmp_path: Path,
) -> None:
    async with stripe_world(tmp_path) as world:
        order = await paid(world)
        opened = await world.fake.state.open_dispute(order["intent"])
        review = await world.fake.state.move_dispute(opened.object["id"], "under_review")
        lost = await world.fake.state.move_dispute(opened.object["id"], "lost")
        # Late and repeated deliveries: the review after the loss, the loss again.
        await world.fake.state.resend_event(review.event_id("charge.dispute.updated"))
        await world.fake.state.resend_event(lost.event_id("charge.dispute.closed"))

        [dispute] = await disputes(world)
        assert dispute["status"] == "lost" and dispute["closed_at"] is not None
        assert await disputes(world, open="true") == []
        assert len(await published(world.deps, OPENED)) == 1
        [closed] = await published(world.deps, CLOSED)
        assert (closed["status"], closed["order_id"]) == ("lost", order["order_id"])


async def test_a_closing_heard_first_still_announces_the_opening_first(tmp_path: Path) -> None:
    async with stripe_world(tmp_path) as world:
        order = await paid(world)
        url = world.fake.state.webhooks.url
        world.fake.set_webhook(None)  # Stripe's webhooks are late...
        opened = await world.fake.state.open_dispute(order["intent"], inquiry=True)
        closed = await world.fake.state.move_dispute(opened.object["id"], "warning_closed")
        world.fake.set_webhook(url)
        # ...and the closing comes first.
        await world.fake.state.resend_event(closed.event_id("charge.dispute.closed"))
        await world.fake.state.resend_event(opened.event_id("charge.dispute.created"))

        [dispute] = await disputes(world)
        assert dispute["status"] == "warning_closed" and dispute["closed_at"] is not None
        types = [row for row in await published(world.deps) if "dispute_id" in row]
        assert [row["status"] for row in types] == ["warning_closed", "warning_closed"]
        assert len(await published(world.deps, OPENED)) == 1
        assert len(await published(world.deps, CLOSED)) == 1


async def test_a_dispute_of_a_payment_store_does_not_know_is_recorded_without_an_order(
    tmp_path: Path,
) -> None:
    async with stripe_world(tmp_path) as world:
        # A payment taken outside Store (a Payment Link, the Dashboard's virtual terminal).
        state = world.fake.state
        intent = state._store(
            state._base(
                "pi",
                "payment_intent",
                amount=900,
                amount_received=900,
                currency="eur",
                status="succeeded",
            )
        )
        await state.open_dispute(intent["id"])

        [dispute] = await disputes(world)
        assert dispute["order_id"] is None and dispute["amount"] == 900
        [event] = await published(world.deps, OPENED)
        assert event["order_id"] is None
