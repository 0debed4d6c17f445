"""The Stripe path: the real stripe SDK against the local fake Stripe, webhooks signed like
Stripe's and delivered over HTTP to the payments app."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from libs.contracts.common import Principal
from libs.contracts.payments import PaymentLine
from services.payments.app import create_app
from services.payments.bootstrap import PaymentsDeps, build_deps
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
        payload = json.dumps(event).encode()
        signature = sign_webhook(payload, self.fake.webhook_secret, timestamp)
        return await self.http.post(
            "/webhooks/stripe",
            content=payload,
            headers={"stripe-signature": signature, "content-type": "application/json"},
        )


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[StripeWorld]:
    async with running_fake_stripe() as fake:
        settings = settings_for(
            tmp_path,
            stripe_secret_key=fake.api_key,
            stripe_webhook_secret=fake.webhook_secret,
            stripe_api_base=fake.base_url,
            stripe_max_network_retries=0,
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


def delivered(report: Any) -> list[tuple[str, int | None]]:
    return [(d.event_type, d.status_code) for d in report.deliveries]


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
    [event_id] = report.event_ids
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
    completed = world.fake.object(report.event_ids[0])
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


async def test_async_payments_wait_then_succeed_or_fail(world: StripeWorld) -> None:
    settles, fails = await world.pay(), await world.pay()
    for paid in (settles, fails):
        await world.fake.state.complete_checkout_session(paid["session"]["id"], async_payment=True)
        assert (await world.attempt(paid["payment"]["attempt_id"]))["status"] == "unpaid"
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


async def test_paying_closes_the_orders_other_sessions(world: StripeWorld) -> None:
    first = await world.pay()
    second = await world.pay(
        first["shopper"],
        customer_id=first["body"]["customer_id"],
        order_id=first["body"]["order_id"],
        new_attempt=True,
    )
    await world.fake.state.complete_checkout_session(first["session"]["id"])
    await world.fake.wait_for_deliveries()
    assert world.fake.object(second["session"]["id"])["status"] == "expired"
    assert (await world.attempt(second["payment"]["attempt_id"]))["status"] == "canceled"
    assert await published(world.deps, EXPIRED) == []


async def test_two_paid_sessions_for_one_order_are_one_payment_and_a_refund_flag(
    world: StripeWorld,
) -> None:
    first = await world.pay()
    second = await world.pay(
        first["shopper"],
        customer_id=first["body"]["customer_id"],
        order_id=first["body"]["order_id"],
        new_attempt=True,
    )
    url = world.fake.state.webhooks.url
    world.fake.set_webhook(None)  # the shopper pays on both tabs before any webhook arrives
    one = await world.fake.state.complete_checkout_session(first["session"]["id"])
    two = await world.fake.state.complete_checkout_session(second["session"]["id"])
    world.fake.set_webhook(url)
    await world.fake.state.resend_event(one.event_ids[0])
    await world.fake.state.resend_event(two.event_ids[0])
    assert (await world.attempt(first["payment"]["attempt_id"]))["status"] == "paid"
    flagged = await world.attempt(second["payment"]["attempt_id"])
    assert flagged["status"] == "canceled" and flagged["refund_required"] is True
    assert flagged["refund_reason"] == "order_already_paid"
    assert len(await published(world.deps, SUCCEEDED)) == 1


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
    completed, invoice = report.event_ids
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
    assert update.idempotency_key == f"store-cancel-{subscription['id']}"
    await world.fake.wait_for_deliveries()  # customer.subscription.updated comes back
    # The period ends: Stripe deletes the subscription instead of renewing it.
    await world.fake.state.renew_subscription(stripe_id)
    [ended] = (await world.http.get("/subscriptions", headers=headers(shopper))).json()
    assert ended["status"] == "canceled"
    [announced] = await published(world.deps, CANCELED)
    assert announced["at_period_end"] is True
    assert await published(world.deps, RENEWED) == []


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
