"""`StripeProvider.refund` of a subscription's first invoice, against the fake Stripe through the
real SDK: what Stripe may answer when the subscription is canceled before the money goes back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.payments.domain import PaymentRejected
from services.payments.provider import RefundRequest
from services.payments.stripe_provider import StripeProvider
from tests.fakes.stripe_fixtures import RunningFakeStripe, running_fake_stripe
from tests.fakes.stripe_server import JSON, wrong_state
from tests.unit.fakes.test_stripe_server import monthly_line, session_params

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@pytest.fixture
async def fake() -> AsyncIterator[RunningFakeStripe]:
    async with running_fake_stripe() as running:
        yield running


@pytest.fixture
async def provider(fake: RunningFakeStripe) -> AsyncIterator[StripeProvider]:
    stripe_provider = StripeProvider(
        secret_key=fake.api_key,
        webhook_secrets=[fake.webhook_secret],
        api_base=fake.base_url,
        max_network_retries=0,
    )
    yield stripe_provider
    await stripe_provider.aclose()


async def paid_session(fake: RunningFakeStripe) -> JSON:
    """A subscription checkout paid at the fake: its first invoice is paid."""
    params = session_params("subscription", monthly_line(1500), customer_email="r@x.test")
    session = await fake.client().v1.checkout.sessions.create_async(params)
    await fake.state.complete_checkout_session(session.id)
    return fake.object(session.id)


def refund_of(session: JSON) -> RefundRequest:
    return RefundRequest(
        refund_id=str(uuid.uuid4()),
        attempt_id=str(uuid.uuid4()),
        provider_reference=session["invoice"],
        amount=1500,
        currency="EUR",
        reason="order_already_paid",
        provider_subscription_id=session["subscription"],
    )


def refunds(fake: RunningFakeStripe) -> list[JSON]:
    return [o for o in fake.state.objects.values() if o.get("object") == "refund"]


def refuse_cancel(fake: RunningFakeStripe, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stripe refuses the DELETE with a 400, not the 404 it gives a canceled subscription."""

    def refused(subscription_id: str, call: Any = None) -> JSON:
        raise wrong_state(f"Subscription {subscription_id} cannot be canceled now.")

    monkeypatch.setattr(fake.state, "cancel_subscription", refused)


@pytest.mark.parametrize("ended", ["canceled", "incomplete_expired"])
async def test_a_subscription_that_already_ended_still_gets_its_invoice_refunded(
    fake: RunningFakeStripe,
    provider: StripeProvider,
    monkeypatch: pytest.MonkeyPatch,
    ended: str,
) -> None:
    session = await paid_session(fake)
    fake.object(session["subscription"])["status"] = ended
    refuse_cancel(fake, monkeypatch)
    request = refund_of(session)

    answer = await provider.refund(request)

    [refund] = refunds(fake)
    assert (refund["id"], answer.status, refund["amount"]) == (answer.id, "succeeded", 1500)
    [create] = fake.requests(method="POST", path="/v1/refunds")
    assert create.idempotency_key == f"store-refund-{request.refund_id}"
    # Stripe was asked what the subscription is now, and nothing was refused for it.
    [asked] = fake.requests(method="GET", path=f"/v1/subscriptions/{session['subscription']}")
    assert asked.status == 200


async def test_a_live_subscription_stripe_would_not_cancel_is_not_refunded(
    fake: RunningFakeStripe, provider: StripeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await paid_session(fake)
    refuse_cancel(fake, monkeypatch)

    with pytest.raises(PaymentRejected):
        await provider.refund(refund_of(session))

    # It still bills: the money stays until the cancel succeeds, the refund is retried later.
    assert fake.object(session["subscription"])["status"] == "active"
    assert refunds(fake) == []
