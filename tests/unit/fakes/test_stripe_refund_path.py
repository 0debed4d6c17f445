"""The fake Stripe as harsh as Stripe on a subscription refund's path: an ended subscription's
DELETE, an invoice's payments, and requests that fail once. Driven by the real stripe SDK."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import stripe

from tests.fakes.stripe_fixtures import RunningFakeStripe, running_fake_stripe
from tests.unit.fakes.test_stripe_server import monthly_line, session_params

# stripe's HTTPXClient posts its form body with data=<str>, which httpx deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@pytest.fixture
async def fake() -> AsyncIterator[RunningFakeStripe]:
    async with running_fake_stripe() as running:
        yield running


@pytest.fixture
def client(fake: RunningFakeStripe) -> stripe.StripeClient:
    return fake.client()


async def paid_subscription(
    fake: RunningFakeStripe, client: stripe.StripeClient
) -> stripe.checkout.Session:
    params = session_params("subscription", monthly_line(1200), customer_email="s@example.com")
    session = await client.v1.checkout.sessions.create_async(params)
    await fake.state.complete_checkout_session(session.id)
    return await client.v1.checkout.sessions.retrieve_async(session.id)


# -- an ended subscription ---------------------------------------------------------------------


async def test_a_second_cancel_is_no_such_subscription_whatever_the_key(
    fake: RunningFakeStripe, client: stripe.StripeClient
) -> None:
    session = await paid_subscription(fake, client)
    assert isinstance(session.subscription, str)
    key = f"k-{uuid.uuid4()}"

    canceled = await client.v1.subscriptions.cancel_async(
        session.subscription, options={"idempotency_key": key}
    )
    with pytest.raises(stripe.InvalidRequestError) as again:
        # The same key does not replay the first answer: Stripe ignores keys on DELETE.
        await client.v1.subscriptions.cancel_async(
            session.subscription, options={"idempotency_key": key}
        )

    assert canceled.status == "canceled"
    assert (again.value.http_status, again.value.code) == (404, "resource_missing")
    assert again.value.param == "id"
    assert f"No such subscription: '{session.subscription}'" in str(again.value)
    # It can still be read, and it ended once.
    found = await client.v1.subscriptions.retrieve_async(session.subscription)
    assert found.status == "canceled"
    assert len(fake.events("customer.subscription.deleted")) == 1
    deletes = fake.requests(method="DELETE")
    assert [(r.status, r.idempotency_key, r.replayed) for r in deletes] == [
        (200, None, False),
        (404, None, False),
    ]


async def test_an_expired_incomplete_subscription_cannot_be_canceled_either(
    fake: RunningFakeStripe, client: stripe.StripeClient
) -> None:
    session = await paid_subscription(fake, client)
    assert isinstance(session.subscription, str)
    fake.object(session.subscription)["status"] = "incomplete_expired"

    with pytest.raises(stripe.InvalidRequestError) as refused:
        await client.v1.subscriptions.cancel_async(session.subscription)

    assert (refused.value.http_status, refused.value.code) == (404, "resource_missing")
    assert fake.events("customer.subscription.deleted") == []


# -- an invoice's payments ---------------------------------------------------------------------


async def test_an_invoice_shows_its_payments_only_when_expanded(
    fake: RunningFakeStripe, client: stripe.StripeClient
) -> None:
    session = await paid_subscription(fake, client)
    assert isinstance(session.invoice, str)

    plain = await client.v1.invoices.retrieve_async(session.invoice)
    expanded = await client.v1.invoices.retrieve_async(session.invoice, {"expand": ["payments"]})
    deep = await client.v1.invoices.retrieve_async(
        session.invoice, {"expand": ["payments.data.payment.payment_intent"]}
    )

    # The pinned version's shape: no payment intent or charge on the invoice itself.
    for invoice in (plain, expanded, deep):
        assert "payment_intent" not in invoice and "charge" not in invoice
    assert "payments" not in plain
    assert expanded.payments is not None
    [payment] = expanded.payments.data
    assert (payment.status, payment.is_default, payment.amount_paid) == ("paid", True, 1200)
    assert payment.payment.type == "payment_intent"
    assert isinstance(payment.payment.payment_intent, str)
    intent = await client.v1.payment_intents.retrieve_async(payment.payment.payment_intent)
    assert (intent.status, intent.amount_received) == ("succeeded", 1200)
    assert deep.payments is not None
    nested = deep.payments.data[0].payment.payment_intent
    assert isinstance(nested, stripe.PaymentIntent) and nested.id == intent.id


# -- requests that fail once -------------------------------------------------------------------


async def test_a_request_rate_limited_before_it_ran_did_nothing_and_keeps_its_key(
    fake: RunningFakeStripe, client: stripe.StripeClient
) -> None:
    fake.state.fail_next("POST", "/v1/customers", status=429)
    key = f"k-{uuid.uuid4()}"

    with pytest.raises(stripe.RateLimitError) as limited:
        await client.v1.customers.create_async(
            {"email": "a@example.com"}, options={"idempotency_key": key}
        )
    customers_after_failure = [o for o in fake.state.objects.values() if o["object"] == "customer"]
    created = await client.v1.customers.create_async(
        {"email": "a@example.com"}, options={"idempotency_key": key}
    )

    assert limited.value.http_status == 429
    assert limited.value.json_body == {
        "error": {
            "type": "invalid_request_error",
            "code": "rate_limit",
            "doc_url": "https://stripe.com/docs/error-codes/rate-limit",
            "message": limited.value.user_message,
        }
    }
    assert customers_after_failure == []
    assert created.email == "a@example.com"
    calls = fake.requests(path="/v1/customers")
    assert [(r.status, r.replayed) for r in calls] == [(429, False), (200, False)]


async def test_a_request_whose_answer_was_lost_is_done_and_replayed_under_its_key(
    fake: RunningFakeStripe, client: stripe.StripeClient
) -> None:
    fake.state.fail_next("POST", "/v1/customers", status=500, after_handling=True)
    key = f"k-{uuid.uuid4()}"

    with pytest.raises(stripe.APIError) as lost:
        await client.v1.customers.create_async(
            {"email": "a@example.com"}, options={"idempotency_key": key}
        )
    [done] = [o for o in fake.state.objects.values() if o["object"] == "customer"]
    replayed = await client.v1.customers.create_async(
        {"email": "a@example.com"}, options={"idempotency_key": key}
    )
    other = await client.v1.customers.create_async({"email": "b@example.com"})

    assert lost.value.http_status == 500
    assert replayed.id == done["id"]
    assert other.id != done["id"]  # it failed once, then never again
    calls = fake.requests(path="/v1/customers")
    assert [(r.status, r.replayed) for r in calls] == [(500, False), (200, True), (200, False)]


async def test_a_failure_waits_for_its_own_method_and_path(
    fake: RunningFakeStripe, client: stripe.StripeClient
) -> None:
    fake.state.fail_next("POST", "/v1/refunds", status=500)

    await client.v1.customers.create_async({"email": "a@example.com"})
    listed = await client.v1.customers.list_async()

    assert len(listed.data) == 1
    assert all(r.status == 200 for r in fake.requests())
