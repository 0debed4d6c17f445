"""The Stripe path: the real stripe SDK against the local fake Stripe, webhooks signed like
Stripe's and delivered over HTTP to the payments app."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from libs.contracts.common import Principal
from libs.contracts.payments import PaymentLine
from services.payments.app import create_app
from services.payments.bootstrap import PaymentsDeps, build_deps
from services.payments.stripe_provider import HANDLED
from services.payments.tables import order_payments, payment_attempts
from tests.api.payments.test_customers import problem
from tests.fakes.stripe_fixtures import (
    RunningFakeStripe,
    running_fake_stripe,
    serve_asgi,
    sign_webhook,
)
from tests.support.services import behind_gateway, service_headers
from tests.unit.payments.builders import (
    ACTIVATED,
    CANCELED,
    EXPIRED,
    FAILED,
    REFUND_SUCCEEDED,
    REFUNDED,
    RENEWED,
    SUCCEEDED,
    billing,
    headers,
    published,
    settings_for,
    start_payment,
    user,
)

# The SDK's httpx client posts form bodies with `data=`; httpx deprecates that, harmlessly.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@dataclass
class StripeWorld:
    fake: RunningFakeStripe
    app: FastAPI
    deps: PaymentsDeps
    http: httpx.AsyncClient

    async def customer(self, shopper: Principal) -> str:
        response = await self.http.post("/customers", json=billing(), headers=headers(shopper))
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def pay(self, shopper: Principal | None = None, **overrides: Any) -> dict[str, Any]:
        """Start a payment; returns the request body and the answer, plus the session."""
        shopper = shopper or user()
        customer_id = overrides.pop("customer_id", None) or await self.customer(shopper)
        body = start_payment(
            owner=shopper.owner,  # type: ignore[arg-type]
            customer_id=customer_id,
            **overrides,
        ).model_dump(mode="json")
        response = await self.http.post("/payments", json=body, headers=headers())
        assert response.status_code in (200, 201), response.text
        payment = response.json()
        session = self.session_of(payment["checkout_url"])
        return {"body": body, "payment": payment, "session": session, "shopper": shopper}

    def session_of(self, checkout_url: str) -> dict[str, Any]:
        session_id = checkout_url.rstrip("/").rsplit("/", 1)[-1]
        return self.fake.object(session_id)

    async def attempt(self, attempt_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/payments/{attempt_id}", headers=headers())
        return dict(response.json())

    async def post_event(
        self, event: dict[str, Any], *, timestamp: int | None = None
    ) -> httpx.Response:
        # Stripe renders every event at the endpoint's API version and says which.
        payload = json.dumps({"api_version": self.fake.state.api_version, **event}).encode()
        signature = sign_webhook(payload, self.fake.webhook_secret, timestamp)
        return await self.http.post(
            "/webhooks/stripe",
            content=payload,
            headers={"stripe-signature": signature, "content-type": "application/json"},
        )


@contextlib.asynccontextmanager
async def stripe_world(
    tmp_path: Path,
    *,
    shuffle_seed: int = 0,
    other_webhook_secrets: Sequence[str] = (),
    **values: Any,
) -> AsyncIterator[StripeWorld]:
    """The payments app on the fake Stripe; `values` are more payments settings, and
    `other_webhook_secrets` are configured before the fake's own."""
    async with running_fake_stripe(shuffle_seed=shuffle_seed) as fake:
        settings = settings_for(
            tmp_path,
            stripe_secret_key=fake.api_key,
            stripe_webhook_secret=",".join([*other_webhook_secrets, fake.webhook_secret]),
            stripe_api_base=fake.base_url,
            **{"reconcile_interval_s": 0, "stripe_max_network_retries": 0, **values},
        )
        deps = build_deps(settings)
        app = create_app(deps=deps)
        # Served on loopback: Stripe's webhooks arrive over HTTP, as in production.
        async with serve_asgi(behind_gateway(app)) as base_url:
            fake.set_webhook(f"{base_url}/webhooks/stripe")
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://payments", headers=service_headers()
            ) as http:
                yield StripeWorld(fake=fake, app=app, deps=deps, http=http)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[StripeWorld]:
    async with stripe_world(tmp_path) as ready:
        yield ready


def delivered(report: Any) -> list[tuple[str, int | None]]:
    """The deliveries Store acts on, sorted: Stripe sends them in no particular order. Every
    other event type it sends was acknowledged too."""
    assert all(d.status_code == 200 for d in report.deliveries), report.deliveries
    return sorted(
        (d.event_type, d.status_code) for d in report.deliveries if d.event_type in HANDLED
    )


async def test_a_payment_mode_checkout_carries_the_orders_amounts_metadata_and_keys(
    world: StripeWorld,
) -> None:
    shopper = user()
    customer_id = await world.customer(shopper)
    lines = [
        PaymentLine(pricing_id="p-mug", name="Mug", unit_amount=1250, quantity=2),
        PaymentLine(pricing_id="p-poster", name="Poster", unit_amount=999, quantity=1),
    ]
    first = await world.pay(shopper, customer_id=customer_id, lines=lines)
    attempt_id = first["payment"]["attempt_id"]
    [request] = world.fake.requests(method="POST", path="/v1/checkout/sessions")
    assert request.idempotency_key == f"store-checkout-{attempt_id}"
    params = request.params
    assert params["mode"] == "payment"
    assert [
        (i["quantity"], i["price_data"]["unit_amount"], i["price_data"]["currency"])
        for i in params["line_items"]
    ] == [("2", "1250", "eur"), ("1", "999", "eur")]
    metadata = {
        "order_id": first["body"]["order_id"],
        "attempt_id": attempt_id,
        "order_number": first["body"]["order_number"],
    }
    assert params["metadata"] == metadata
    assert params["payment_intent_data"]["metadata"] == metadata
    assert params["payment_intent_data"]["statement_descriptor_suffix"] == "Store Mugs"
    session = first["session"]
    assert session["amount_total"] == first["body"]["amount"] == 3499
    assert first["payment"]["checkout_url"] == session["url"]

    # The Stripe customer is created at the first checkout, with an idempotency key, then reused.
    [created] = world.fake.requests(method="POST", path="/v1/customers")
    assert created.idempotency_key == f"store-customer-{customer_id}"
    assert created.params["email"] == "ada@example.com"
    assert created.params["address"]["country"] == "DE"
    second = await world.pay(shopper, customer_id=customer_id)
    assert len(world.fake.requests(method="POST", path="/v1/customers")) == 1
    assert first["session"]["customer"] == second["session"]["customer"] == created_id(world)
    # A retry returns the same open attempt and opens no second session.
    again = await world.http.post("/payments", json=first["body"], headers=headers())
    assert again.status_code == 200 and again.json() == first["payment"]
    assert len(world.fake.requests(method="POST", path="/v1/checkout/sessions")) == 2


def created_id(world: StripeWorld) -> str:
    customers = [o for o in world.fake.state.objects.values() if o.get("object") == "customer"]
    assert len(customers) == 1
    return str(customers[0]["id"])


async def test_stripe_units_differ_from_iso_for_isk(world: StripeWorld) -> None:
    lines = [PaymentLine(pricing_id="p", name="Wool hat", unit_amount=4990, quantity=1)]
    paid = await world.pay(currency="ISK", lines=lines)
    assert paid["session"]["amount_total"] == 499000  # 4990 krónur, two-decimal at Stripe
    report = await world.fake.state.complete_checkout_session(paid["session"]["id"])
    assert delivered(report) == [("checkout.session.completed", 200)]
    [succeeded] = await published(world.deps, SUCCEEDED)
    assert (succeeded["amount"], succeeded["currency"]) == (4990, "ISK")


async def test_completion_pays_once_however_often_the_webhook_comes(world: StripeWorld) -> None:
    paid = await world.pay()
    attempt_id = paid["payment"]["attempt_id"]
    report = await world.fake.state.complete_checkout_session(paid["session"]["id"])
    assert delivered(report) == [("checkout.session.completed", 200)]
    event_id = report.event_id("checkout.session.completed")
    for _ in range(2):
        again = await world.fake.state.resend_event(event_id)
        assert delivered(again) == [("checkout.session.completed", 200)]
    attempt = await world.attempt(attempt_id)
    assert attempt["status"] == "paid"
    [succeeded] = await published(world.deps, SUCCEEDED)
    assert succeeded["attempt_id"] == attempt_id and succeeded["provider"] == "stripe"
    assert succeeded["provider_reference"].startswith("pi_")
    resent = await world.post_event(world.fake.object(event_id))
    assert resent.status_code == 200 and resent.json()["duplicate"] is True


async def test_a_late_expiry_after_completion_changes_nothing(world: StripeWorld) -> None:
    paid = await world.pay()
    report = await world.fake.state.complete_checkout_session(paid["session"]["id"])
    completed = world.fake.object(report.event_id("checkout.session.completed"))
    # Stripe may deliver events in any order: an "expired" for this session arrives late.
    expired = copy.deepcopy(completed)
    expired.update(id="evt_late_expiry", type="checkout.session.expired")
    expired["data"]["object"].update(status="expired")
    response = await world.post_event(expired)
    assert response.status_code == 200 and response.json()["duplicate"] is False
    assert (await world.attempt(paid["payment"]["attempt_id"]))["status"] == "paid"
    assert await published(world.deps, EXPIRED) == []


async def test_an_expired_session_expires_the_attempt(world: StripeWorld) -> None:
    paid = await world.pay()
    report = await world.fake.state.expire_session(paid["session"]["id"])
    assert delivered(report) == [("checkout.session.expired", 200)]
    assert (await world.attempt(paid["payment"]["attempt_id"]))["status"] == "expired"
    [expired] = await published(world.deps, EXPIRED)
    assert expired["attempt_id"] == paid["payment"]["attempt_id"]


async def test_async_payments_are_processing_then_succeed_or_fail(world: StripeWorld) -> None:
    settles, fails = await world.pay(), await world.pay()
    for paid in (settles, fails):
        await world.fake.state.complete_checkout_session(paid["session"]["id"], async_payment=True)
        assert (await world.attempt(paid["payment"]["attempt_id"]))["status"] == "processing"
    await world.fake.state.succeed_async_payment(settles["session"]["id"])
    await world.fake.state.fail_async_payment(fails["session"]["id"])
    assert (await world.attempt(settles["payment"]["attempt_id"]))["status"] == "paid"
    assert (await world.attempt(fails["payment"]["attempt_id"]))["status"] == "failed"
    assert [e["attempt_id"] for e in await published(world.deps, SUCCEEDED)] == [
        settles["payment"]["attempt_id"]
    ]
    assert [e["attempt_id"] for e in await published(world.deps, FAILED)] == [
        fails["payment"]["attempt_id"]
    ]


async def pay_again(world: StripeWorld, paid: dict[str, Any]) -> httpx.Response:
    body = {**paid["body"], "new_attempt": True}
    return await world.http.post("/payments", json=body, headers=headers())


async def test_a_sepa_debit_on_its_way_is_processing_and_cannot_be_paid_twice(
    world: StripeWorld,
) -> None:
    paid = await world.pay()
    attempt_id = paid["payment"]["attempt_id"]
    await world.fake.state.complete_checkout_session(paid["session"]["id"], async_payment=True)
    assert (await world.attempt(attempt_id))["status"] == "processing"
    # Pay again (and a retried checkout) is refused: the debit in flight is not canceled.
    problem(await pay_again(world, paid), 409, "payment_processing")
    retried = await world.http.post("/payments", json=paid["body"], headers=headers())
    problem(retried, 409, "payment_processing")
    assert len(world.fake.requests(method="POST", path="/v1/checkout/sessions")) == 1
    assert world.fake.requests(path=f"/v1/checkout/sessions/{paid['session']['id']}/expire") == []
    # Days later the debit settles: the order is paid, once, and nothing is refunded.
    await world.fake.state.succeed_async_payment(paid["session"]["id"])
    attempt = await world.attempt(attempt_id)
    assert attempt["status"] == "paid" and attempt["refund_required"] is False
    assert [e["attempt_id"] for e in await published(world.deps, SUCCEEDED)] == [attempt_id]
    assert await published(world.deps, REFUNDED) == []
    assert world.fake.requests(method="POST", path="/v1/refunds") == []
    problem(await pay_again(world, paid), 409, "order_already_paid")


async def test_a_failed_sepa_debit_lets_the_shopper_pay_again(world: StripeWorld) -> None:
    paid = await world.pay()
    await world.fake.state.complete_checkout_session(paid["session"]["id"], async_payment=True)
    assert (await world.attempt(paid["payment"]["attempt_id"]))["status"] == "processing"
    await world.fake.state.fail_async_payment(paid["session"]["id"])
    assert (await world.attempt(paid["payment"]["attempt_id"]))["status"] == "failed"
    again = await pay_again(world, paid)
    assert again.status_code == 201, again.text
    assert again.json()["status"] == "unpaid"
    await world.fake.state.complete_checkout_session(
        world.session_of(again.json()["checkout_url"])["id"]
    )
    assert (await world.attempt(again.json()["attempt_id"]))["status"] == "paid"
    assert await published(world.deps, REFUNDED) == []


async def test_a_new_attempt_closes_the_previous_session_first(world: StripeWorld) -> None:
    first = await world.pay()
    second = await world.pay(
        first["shopper"],
        customer_id=first["body"]["customer_id"],
        order_id=first["body"]["order_id"],
        new_attempt=True,
    )
    await world.fake.wait_for_deliveries()
    assert world.fake.object(first["session"]["id"])["status"] == "expired"
    assert world.fake.object(second["session"]["id"])["status"] == "open"
    assert (await world.attempt(first["payment"]["attempt_id"]))["status"] == "canceled"
    assert await published(world.deps, EXPIRED) == []
    expiries = world.fake.requests(path=f"/v1/checkout/sessions/{first['session']['id']}/expire")
    assert [r.status for r in expiries] == [200]


@pytest.mark.parametrize("old_first", [True, False])
async def test_money_on_the_old_and_the_new_session_is_one_payment_and_one_refund(
    world: StripeWorld, old_first: bool
) -> None:
    first = await world.pay()
    url = world.fake.state.webhooks.url
    world.fake.set_webhook(None)  # webhooks are late: the shopper pays the first tab...
    one = await world.fake.state.complete_checkout_session(first["session"]["id"])
    # ...while the shopper's other tab asks to pay again: the old session cannot be expired.
    second = await world.pay(
        first["shopper"],
        customer_id=first["body"]["customer_id"],
        order_id=first["body"]["order_id"],
        new_attempt=True,
    )
    two = await world.fake.state.complete_checkout_session(second["session"]["id"])
    world.fake.set_webhook(url)
    events = [
        one.event_id("checkout.session.completed"),
        two.event_id("checkout.session.completed"),
    ]
    for event_id in events if old_first else events[::-1]:
        await world.fake.state.resend_event(event_id)
    await world.fake.wait_for_deliveries()
    assert (await world.attempt(second["payment"]["attempt_id"]))["status"] == "paid"
    refunded = await world.attempt(first["payment"]["attempt_id"])
    assert refunded["status"] == "canceled" and refunded["refund_required"] is True
    assert len(await published(world.deps, SUCCEEDED)) == 1
    # The first session's money went back through a Stripe Refund, with its own key.
    intent = world.fake.object(one.object["payment_intent"])
    assert intent["amount_refunded"] == intent["amount_received"] == 2500
    [refund_call] = world.fake.requests(method="POST", path="/v1/refunds")
    assert refund_call.idempotency_key and refund_call.idempotency_key.startswith("store-refund-")
    [refunded_event] = await published(world.deps, REFUNDED)
    assert refunded_event["attempt_id"] == first["payment"]["attempt_id"]
    assert refunded_event["provider_refund_id"].startswith("re_")


async def test_a_subscription_checkout_activates_and_renews(world: StripeWorld) -> None:
    paid = await world.pay(recurring=True)
    attempt_id = paid["payment"]["attempt_id"]
    [request] = world.fake.requests(method="POST", path="/v1/checkout/sessions")
    assert request.params["mode"] == "subscription"
    price_data = request.params["line_items"][0]["price_data"]
    assert price_data["recurring"] == {"interval": "month", "interval_count": "1"}
    assert request.params["subscription_data"]["metadata"]["attempt_id"] == attempt_id
    report = await world.fake.state.complete_checkout_session(paid["session"]["id"])
    assert delivered(report) == [("checkout.session.completed", 200), ("invoice.paid", 200)]
    assert (await world.attempt(attempt_id))["status"] == "paid"
    assert len(await published(world.deps, SUCCEEDED)) == 1
    [activated] = await published(world.deps, ACTIVATED)
    shopper = paid["shopper"]
    [subscription] = (await world.http.get("/subscriptions", headers=headers(shopper))).json()
    assert subscription["id"] == activated["subscription_id"]
    assert subscription["status"] == "active" and subscription["current_period_end"]
    stripe_id = world.fake.object(paid["session"]["id"])["subscription"]

    renewal = await world.fake.state.renew_subscription(stripe_id)
    assert ("invoice.paid", 200) in delivered(renewal)
    [renewed] = await published(world.deps, RENEWED)
    assert renewed["subscription_id"] == subscription["id"] and renewed["amount"] == 2500
    [after] = (await world.http.get("/subscriptions", headers=headers(shopper))).json()
    assert after["current_period_end"] > subscription["current_period_end"]
    assert after["renewals"] == 1
    invoice_event = [e for e in renewal.event_ids if world.fake.object(e)["type"] == "invoice.paid"]
    await world.fake.state.resend_event(invoice_event[0])
    assert len(await published(world.deps, RENEWED)) == 1


async def test_the_first_invoice_before_the_completed_session(world: StripeWorld) -> None:
    paid = await world.pay(recurring=True)
    url = world.fake.state.webhooks.url
    world.fake.set_webhook(None)
    report = await world.fake.state.complete_checkout_session(paid["session"]["id"])
    world.fake.set_webhook(url)
    completed = report.event_id("checkout.session.completed")
    invoice = report.event_id("invoice.paid")
    assert delivered(await world.fake.state.resend_event(invoice)) == [("invoice.paid", 200)]
    assert (await world.attempt(paid["payment"]["attempt_id"]))["status"] == "paid"
    await world.fake.state.resend_event(completed)
    assert len(await published(world.deps, SUCCEEDED)) == 1
    assert len(await published(world.deps, ACTIVATED)) == 1


async def test_canceling_tells_stripe_and_announces_once(world: StripeWorld) -> None:
    paid = await world.pay(recurring=True)
    await world.fake.state.complete_checkout_session(paid["session"]["id"])
    shopper = paid["shopper"]
    [subscription] = (await world.http.get("/subscriptions", headers=headers(shopper))).json()
    canceled = await world.http.post(
        f"/subscriptions/{subscription['id']}/cancel", headers=headers(shopper)
    )
    assert canceled.status_code == 200 and canceled.json()["cancel_at_period_end"] is True
    stripe_id = world.fake.object(paid["session"]["id"])["subscription"]
    assert world.fake.object(stripe_id)["cancel_at_period_end"] is True
    [update] = world.fake.requests(method="POST", path=f"/v1/subscriptions/{stripe_id}")
    assert update.idempotency_key
    assert update.idempotency_key.startswith(f"store-cancel-{subscription['id']}-")
    await world.fake.wait_for_deliveries()  # customer.subscription.updated comes back
    # The period ends: Stripe deletes the subscription instead of renewing it.
    await world.fake.state.renew_subscription(stripe_id)
    [ended] = (await world.http.get("/subscriptions", headers=headers(shopper))).json()
    assert ended["status"] == "canceled"
    [announced] = await published(world.deps, CANCELED)
    assert announced["at_period_end"] is True
    assert await published(world.deps, RENEWED) == []


async def test_a_late_update_from_stripe_cannot_undo_a_newer_one(world: StripeWorld) -> None:
    paid = await world.pay(recurring=True)
    await world.fake.state.complete_checkout_session(paid["session"]["id"])
    shopper = paid["shopper"]
    [subscription] = (await world.http.get("/subscriptions", headers=headers(shopper))).json()
    stripe_id = world.fake.object(paid["session"]["id"])["subscription"]
    url = world.fake.state.webhooks.url
    world.fake.set_webhook(None)  # the cancel's event is held back...
    cancel = f"/subscriptions/{subscription['id']}/cancel"
    assert (await world.http.post(cancel, headers=headers(shopper))).status_code == 200
    await world.fake.wait_for_deliveries()
    [held] = [
        e
        for e in world.fake.state.events
        if e["type"] == "customer.subscription.updated"
        and e["data"]["object"]["cancel_at_period_end"] is True
    ]
    world.fake.set_webhook(url)
    # ...while the reactivation in Stripe's portal arrives first.
    world.fake.state.update_subscription(stripe_id, {"cancel_at_period_end": "false"}, None)
    [newer] = world.fake.state.take_outbox()
    await world.fake.state.webhooks.deliver_all([newer])
    # Both in the same second: their timestamps cannot order them.
    world.fake.state.get("event", held["id"])["created"] = newer["created"]
    report = await world.fake.state.resend_event(held["id"])
    assert [d.status_code for d in report.deliveries] == [200]
    [now] = (await world.http.get("/subscriptions", headers=headers(shopper))).json()
    assert now["cancel_at_period_end"] is False
    assert world.fake.object(stripe_id)["cancel_at_period_end"] is False


async def test_cancel_after_a_reactivation_is_a_new_request_at_stripe(world: StripeWorld) -> None:
    paid = await world.pay(recurring=True)
    await world.fake.state.complete_checkout_session(paid["session"]["id"])
    shopper = paid["shopper"]
    [subscription] = (await world.http.get("/subscriptions", headers=headers(shopper))).json()
    cancel = f"/subscriptions/{subscription['id']}/cancel"
    assert (await world.http.post(cancel, headers=headers(shopper))).status_code == 200
    await world.fake.wait_for_deliveries()  # customer.subscription.updated comes back
    stripe_id = world.fake.object(paid["session"]["id"])["subscription"]
    # The shopper reactivates it in Stripe's customer portal...
    world.fake.state.update_subscription(stripe_id, {"cancel_at_period_end": "false"}, None)
    await world.fake.state.webhooks.deliver_all(world.fake.state.take_outbox())
    [reactivated] = (await world.http.get("/subscriptions", headers=headers(shopper))).json()
    assert reactivated["cancel_at_period_end"] is False
    # ...then cancels again in the shop: Stripe must see a new request, not a replay.
    again = await world.http.post(cancel, headers=headers(shopper))
    assert again.status_code == 200 and again.json()["cancel_at_period_end"] is True
    assert world.fake.object(stripe_id)["cancel_at_period_end"] is True
    updates = world.fake.requests(method="POST", path=f"/v1/subscriptions/{stripe_id}")
    assert len({u.idempotency_key for u in updates}) == 2
    assert [u.replayed for u in updates] == [False, False]


async def test_a_failed_first_invoice_leaves_the_checkout_payable(world: StripeWorld) -> None:
    paid = await world.pay(recurring=True)
    session_id = paid["session"]["id"]
    await world.fake.state.complete_checkout_session(session_id, async_payment=True)
    url = world.fake.state.webhooks.url
    world.fake.set_webhook(None)
    await world.fake.state.fail_async_payment(session_id)
    world.fake.set_webhook(url)
    [invoice_failed] = world.fake.events("invoice.payment_failed")
    assert invoice_failed["data"]["object"]["billing_reason"] == "subscription_create"
    await world.fake.state.resend_event(invoice_failed["id"])
    # The invoice alone does not fail the attempt: the session's own events decide.
    assert (await world.attempt(paid["payment"]["attempt_id"]))["status"] == "processing"
    [session_failed] = world.fake.events("checkout.session.async_payment_failed")
    await world.fake.state.resend_event(session_failed["id"])
    assert (await world.attempt(paid["payment"]["attempt_id"]))["status"] == "failed"


@pytest.mark.parametrize("case", ["unsigned", "badly signed", "stale", "other secret"])
async def test_unverified_webhooks_are_refused(world: StripeWorld, case: str) -> None:
    paid = await world.pay()
    event = {
        "id": "evt_forged",
        "object": "event",
        "type": "checkout.session.completed",
        "created": int(time.time()),
        "data": {
            "object": {
                "id": paid["session"]["id"],
                "metadata": {"attempt_id": paid["payment"]["attempt_id"]},
                "payment_status": "paid",
                "amount_total": paid["body"]["amount"],
                "currency": "eur",
            }
        },
    }
    payload = json.dumps(event).encode()
    secret = world.fake.webhook_secret
    signature = {
        "unsigned": None,
        "badly signed": sign_webhook(payload + b" ", secret),
        "stale": sign_webhook(payload, secret, int(time.time()) - 301),
        "other secret": sign_webhook(payload, "whsec_someone_else"),
    }[case]
    sent_headers = {"content-type": "application/json"}
    if signature is not None:
        sent_headers["stripe-signature"] = signature
    response = await world.http.post("/webhooks/stripe", content=payload, headers=sent_headers)
    problem(response, 400, "invalid_signature")
    assert (await world.attempt(paid["payment"]["attempt_id"]))["status"] == "unpaid"
    assert await published(world.deps, SUCCEEDED) == []
    # The same event, signed as Stripe signs it, is accepted.
    accepted = await world.post_event(event)
    assert accepted.status_code == 200, accepted.text
    assert (await world.attempt(paid["payment"]["attempt_id"]))["status"] == "paid"


async def test_the_dev_provider_is_off_when_stripe_is_configured(world: StripeWorld) -> None:
    paid = await world.pay()
    attempt_id = paid["payment"]["attempt_id"]
    problem(await world.http.get(f"/dev-checkout/{attempt_id}"), 404, "not_found")
    problem(await world.http.post(f"/dev-checkout/{attempt_id}/pay"), 404)
    problem(await world.http.post("/dev-checkout/subscriptions/x/renew"), 404)
    assert (await world.attempt(attempt_id))["status"] == "unpaid"


# --- reconciliation: webhooks that never arrive -------------------------------------------


async def reconcile(world: StripeWorld) -> dict[str, Any]:
    response = await world.http.post("/reconcile", headers=headers())
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.mark.parametrize("recurring", [False, True])
async def test_a_lost_payment_webhook_is_settled_by_reconciliation(
    tmp_path: Path, recurring: bool
) -> None:
    async with stripe_world(tmp_path, reconcile_after_s=0) as world:
        paid = await world.pay(recurring=recurring)
        world.fake.set_webhook(None)  # every webhook from now on is lost
        await world.fake.state.complete_checkout_session(paid["session"]["id"])
        attempt_id = paid["payment"]["attempt_id"]
        assert (await world.attempt(attempt_id))["status"] == "unpaid"
        assert await reconcile(world) == {
            "checked": 1,
            "settled": 1,
            "refunds_retried": 0,
            "errors": 0,
            "subscriptions_checked": 0,
            "renewals_recorded": 0,
        }
        assert (await world.attempt(attempt_id))["status"] == "paid"
        [succeeded] = await published(world.deps, SUCCEEDED)
        assert succeeded["attempt_id"] == attempt_id
        assert len(await published(world.deps, ACTIVATED)) == (1 if recurring else 0)
        # Nothing left to ask about; a late webhook changes nothing.
        assert (await reconcile(world))["checked"] == 0
        for event in world.fake.events("checkout.session.completed"):
            assert (await world.post_event(event)).status_code == 200
        assert len(await published(world.deps, SUCCEEDED)) == 1


async def look_again_now(world: StripeWorld) -> None:
    """The leases of earlier runs are over (as they are an interval later)."""
    async with world.deps.runtime.transaction() as session:
        await session.execute(payment_attempts.update().values(reconcile_after=None))


@pytest.mark.parametrize("settles", [True, False])
async def test_reconciliation_follows_a_processing_debit_until_it_settles(
    tmp_path: Path, settles: bool
) -> None:
    async with stripe_world(tmp_path, reconcile_after_s=0) as world:
        paid = await world.pay()
        session_id, attempt_id = paid["session"]["id"], paid["payment"]["attempt_id"]
        world.fake.set_webhook(None)  # every webhook from now on is lost
        await world.fake.state.complete_checkout_session(session_id, async_payment=True)
        assert (await reconcile(world))["settled"] == 1
        assert (await world.attempt(attempt_id))["status"] == "processing"
        # Still on its way: asked about again, never expired or abandoned.
        world.fake.object(session_id)["expires_at"] = int(time.time()) - 60
        await look_again_now(world)
        assert await reconcile(world) == {
            "checked": 1,
            "settled": 0,
            "refunds_retried": 0,
            "errors": 0,
            "subscriptions_checked": 0,
            "renewals_recorded": 0,
        }
        assert (await world.attempt(attempt_id))["status"] == "processing"
        problem(await pay_again(world, paid), 409, "payment_processing")
        if settles:
            await world.fake.state.succeed_async_payment(session_id)
        else:
            await world.fake.state.fail_async_payment(session_id)
        await look_again_now(world)
        assert (await reconcile(world))["settled"] == 1
        status = (await world.attempt(attempt_id))["status"]
        assert status == ("paid" if settles else "failed")
        assert len(await published(world.deps, SUCCEEDED if settles else FAILED)) == 1
        assert await published(world.deps, REFUNDED) == []
        await look_again_now(world)
        assert (await reconcile(world))["checked"] == 0


async def test_a_lost_expiry_webhook_is_settled_by_reconciliation(tmp_path: Path) -> None:
    async with stripe_world(tmp_path, reconcile_after_s=0) as world:
        paid = await world.pay()
        world.fake.set_webhook(None)
        await world.fake.state.expire_session(paid["session"]["id"])
        await reconcile(world)
        assert (await world.attempt(paid["payment"]["attempt_id"]))["status"] == "expired"
        assert len(await published(world.deps, EXPIRED)) == 1


async def test_an_open_session_younger_than_the_threshold_is_left_alone(tmp_path: Path) -> None:
    async with stripe_world(tmp_path, reconcile_after_s=3600) as world:
        paid = await world.pay()
        world.fake.set_webhook(None)
        await world.fake.state.complete_checkout_session(paid["session"]["id"])
        assert (await reconcile(world))["checked"] == 0
        assert (
            world.fake.requests(method="GET", path=f"/v1/checkout/sessions/{paid['session']['id']}")
            == []
        )


async def test_the_periodic_run_settles_a_lost_webhook_within_its_period(tmp_path: Path) -> None:
    async with stripe_world(tmp_path, reconcile_after_s=0, reconcile_interval_s=0.2) as world:
        paid = await world.pay()
        world.fake.set_webhook(None)
        await world.fake.state.complete_checkout_session(paid["session"]["id"])
        attempt_id = paid["payment"]["attempt_id"]
        status = "unpaid"
        for _ in range(100):  # bounded: 100 periods at most, never a timing assertion
            status = (await world.attempt(attempt_id))["status"]
            if status == "paid":
                break
            await asyncio.sleep(0.2)
        assert status == "paid"


async def test_a_refund_that_failed_is_retried_by_reconciliation(tmp_path: Path) -> None:
    async with stripe_world(tmp_path, reconcile_after_s=3600) as world:
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
        await world.fake.state.complete_checkout_session(second["session"]["id"])
        world.fake.set_webhook(url)
        world.fake.state.api_key_prefix = "sk_revoked_"  # Stripe refuses every call for now
        await world.fake.state.resend_event(one.event_id("checkout.session.completed"))
        [pending] = (await world.http.get("/refunds", headers=headers())).json()
        assert pending["status"] == "pending" and pending["last_error"]
        assert pending["tries"] == 1 and pending["next_try_at"]
        world.fake.state.api_key_prefix = "sk_test_"
        world.deps.reconciler.interval = timedelta(0)
        # The next try waits a minute after the first failure...
        assert (await reconcile(world))["refunds_retried"] == 0
        # ...and then goes through.
        world.deps.reconciler.clock = lambda: datetime.now(UTC) + timedelta(minutes=1, seconds=1)
        assert (await reconcile(world))["refunds_retried"] == 1
        [done] = (await world.http.get("/refunds?status=succeeded", headers=headers())).json()
        assert done["id"] == pending["id"] and done["provider_refund_id"].startswith("re_")
        assert len(await published(world.deps, REFUNDED)) == 1
        assert len(await published(world.deps, REFUND_SUCCEEDED)) == 1


async def test_any_order_of_what_stripe_sends_activates_once(tmp_path: Path) -> None:
    orders = set()
    for seed in range(4):
        async with stripe_world(tmp_path / str(seed), shuffle_seed=seed) as world:
            paid = await world.pay(recurring=True)
            report = await world.fake.state.complete_checkout_session(paid["session"]["id"])
            orders.add(tuple(d.event_type for d in report.deliveries))
            assert (await world.attempt(paid["payment"]["attempt_id"]))["status"] == "paid"
            assert len(await published(world.deps, SUCCEEDED)) == 1
            assert len(await published(world.deps, ACTIVATED)) == 1
    assert len(orders) > 1  # the seeds really gave different orders


def check_body(lines: list[PaymentLine], currency: str = "EUR") -> dict[str, Any]:
    amount = sum(line.unit_amount * line.quantity for line in lines)
    return {
        "amount": amount,
        "currency": currency,
        "lines": [line.model_dump(mode="json") for line in lines],
    }


async def test_the_check_answers_stripes_limits_without_calling_stripe(
    world: StripeWorld,
) -> None:
    """What checkout asks before it freezes a cart: the 422 a payment would get, or 204."""

    def item(index: int, unit_amount: int = 1290, **extra: Any) -> PaymentLine:
        return PaymentLine(
            pricing_id=f"p{index}",
            name=f"Item {index}",
            unit_amount=unit_amount,
            quantity=1,
            **extra,
        )

    refused = {
        "too_many_lines": [item(i) for i in range(101)],
        "amount_too_large": [item(1, 60_000_000), item(2, 60_000_000)],
        "amount_too_small": [item(1, 10)],
        "interval_too_long": [item(1, interval="month", interval_count=37)],
        "mixed_intervals": [item(1, interval="month"), item(2, interval="year")],
    }
    before = len(world.fake.requests())
    for code, lines in refused.items():
        response = await world.http.post(
            "/payments/check", json=check_body(lines), headers=headers()
        )
        problem(response, 422, code)
    fine = await world.http.post(
        "/payments/check", json=check_body([item(i) for i in range(100)]), headers=headers()
    )
    assert fine.status_code == 204, fine.text
    assert len(world.fake.requests()) == before  # nothing asked of Stripe
    async with world.deps.runtime.transaction() as session:
        for table in (order_payments, payment_attempts):
            count = await session.scalar(select(func.count()).select_from(table))
            assert count == 0, table.name
