"""The fake Stripe server, driven by the real stripe SDK over loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import httpx
import pytest
import pytest_asyncio
import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.stripe_fixtures import (
    RunningFakeStripe,
    running_fake_stripe,
    serve_asgi,
    sign_webhook,
)
from tests.fakes.stripe_server import create_fake_stripe_app, parse_stripe_params

if TYPE_CHECKING:
    from stripe.params.checkout import SessionCreateParams

SECRET = "whsec_unit_test_secret"

pytestmark = [
    # One event loop for the module, so that the webhook receiver starts once: each uvicorn
    # shutdown costs ~0.2 s. Every test still gets its own fake Stripe.
    pytest.mark.asyncio(loop_scope="module"),
    # stripe's HTTPXClient posts its form body with data=<str>, which httpx deprecates.
    pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning"),
]


# -- a webhook endpoint standing in for Store's ------------------------------------------------


@dataclass
class WebhookInbox:
    """What a receiving app got: raw bodies and signature headers, in order."""

    url: str = ""
    status_code: int = 200
    received: list[tuple[bytes, str]] = field(default_factory=list)

    def events(self) -> list[stripe.Event]:
        """Every delivery, verified the way Store's webhook route must verify it."""
        return [
            stripe.Webhook.construct_event(body, header, SECRET) for body, header in self.received
        ]


def _receiving_app(inbox: WebhookInbox) -> Starlette:
    async def receive(request: Request) -> Response:
        inbox.received.append((await request.body(), request.headers.get("stripe-signature", "")))
        return Response(status_code=inbox.status_code)

    return Starlette(routes=[Route("/webhook", receive, methods=["POST"])])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def receiver() -> AsyncIterator[WebhookInbox]:
    inbox = WebhookInbox()
    async with serve_asgi(_receiving_app(inbox)) as base_url:
        inbox.url = f"{base_url}/webhook"
        yield inbox


@pytest_asyncio.fixture(loop_scope="module")
async def inbox(receiver: WebhookInbox) -> WebhookInbox:
    """The shared receiver, emptied for this test."""
    receiver.received.clear()
    receiver.status_code = 200
    return receiver


@pytest_asyncio.fixture(loop_scope="module")
async def fake(inbox: WebhookInbox) -> AsyncIterator[RunningFakeStripe]:
    async with running_fake_stripe(webhook_url=inbox.url, webhook_secret=SECRET) as running:
        yield running


@pytest.fixture
def client(fake: RunningFakeStripe) -> stripe.StripeClient:
    return fake.client()


# -- builders ---------------------------------------------------------------------------------


def one_off_line(unit_amount: int, quantity: int = 1) -> dict[str, Any]:
    return {
        "quantity": quantity,
        "price_data": {
            "currency": "eur",
            "unit_amount": unit_amount,
            "product_data": {"name": f"Product {uuid.uuid4().hex[:6]}"},
        },
    }


def monthly_line(unit_amount: int, quantity: int = 1, interval_count: int = 1) -> dict[str, Any]:
    line = one_off_line(unit_amount, quantity)
    line["price_data"]["recurring"] = {"interval": "month", "interval_count": interval_count}
    return line


def session_params(mode: str, *lines: dict[str, Any], **extra: Any) -> SessionCreateParams:
    order_id = str(uuid.uuid4())
    params = {
        "mode": mode,
        "line_items": list(lines),
        "success_url": "https://shop.example/success?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://shop.example/cancel",
        "client_reference_id": order_id,
        "metadata": {"order_id": order_id},
        **extra,
    }
    return cast("SessionCreateParams", params)


def plain(obj: stripe.StripeObject | None) -> dict[str, Any]:
    """A StripeObject (or a missing one) as a plain dict, for comparisons."""
    return obj.to_dict() if obj is not None else {}


async def paid_subscription(
    fake: RunningFakeStripe, client: stripe.StripeClient
) -> tuple[stripe.checkout.Session, stripe.Subscription]:
    params = session_params(
        "subscription",
        monthly_line(900),
        customer_email="sub@example.com",
        subscription_data={"metadata": {"plan": "monthly-box"}},
    )
    session = await client.v1.checkout.sessions.create_async(params)
    await fake.state.complete_checkout_session(session.id)
    session = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert isinstance(session.subscription, str)
    subscription = await client.v1.subscriptions.retrieve_async(session.subscription)
    return session, subscription


# -- form decoding ----------------------------------------------------------------------------


async def test_bracketed_form_keys_become_nested_dicts_and_lists() -> None:
    pairs = [
        ("line_items[0][price_data][product_data][name]", "Box"),
        ("line_items[0][quantity]", "2"),
        ("line_items[1][price]", "price_123"),
        ("metadata[0]", "a metadata key, not an index"),
        ("expand[]", "line_items"),
        ("expand[]", "customer"),
        ("mode", "payment"),
    ]

    assert parse_stripe_params(pairs) == {
        "line_items": [
            {"price_data": {"product_data": {"name": "Box"}}, "quantity": "2"},
            {"price": "price_123"},
        ],
        "metadata": {"0": "a metadata key, not an index"},
        "expand": ["line_items", "customer"],
        "mode": "payment",
    }


# -- customers, with both ways Store may call the SDK -----------------------------------------


async def test_customers_through_the_sync_client_in_a_worker_thread(
    client: stripe.StripeClient,
) -> None:
    created = await asyncio.to_thread(
        client.v1.customers.create,
        {"email": "ada@example.com", "name": "Ada", "metadata": {"owner": "u1", "tmp": "x"}},
    )
    await asyncio.to_thread(
        client.v1.customers.update, created.id, {"metadata": {"tmp": ""}, "name": "Ada L."}
    )
    fetched = await asyncio.to_thread(client.v1.customers.retrieve, created.id)

    assert created.id.startswith("cus_")
    assert created.livemode is False
    assert (fetched.email, fetched.name) == ("ada@example.com", "Ada L.")
    assert plain(fetched.metadata) == {"owner": "u1"}


async def test_customers_through_the_async_client(client: stripe.StripeClient) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    created = await client.v1.customers.create_async(
        {"email": email, "address": {"line1": "Main St 1", "country": "DE"}}
    )
    await client.v1.customers.create_async({"email": "someone-else@example.com"})

    found = await client.v1.customers.list_async({"email": email})

    assert [c.id for c in found.data] == [created.id]
    assert found.data[0].address is not None
    assert found.data[0].address.country == "DE"


# -- checkout sessions ------------------------------------------------------------------------


async def test_payment_session_totals_its_lines_and_points_to_a_local_page(
    fake: RunningFakeStripe, client: stripe.StripeClient
) -> None:
    customer = await client.v1.customers.create_async({"email": "buyer@example.com"})
    params = session_params(
        "payment",
        one_off_line(1500, quantity=2),
        one_off_line(500),
        customer=customer.id,
        payment_intent_data={"statement_descriptor_suffix": "ORDER 42"},
        expand=["line_items"],
    )

    session = await client.v1.checkout.sessions.create_async(params)

    assert session.id.startswith("cs_test_")
    assert (session.amount_total, session.currency, session.status) == (3500, "eur", "open")
    assert session.customer == customer.id
    assert plain(session.metadata) == params["metadata"]
    assert session.line_items is not None
    assert [item.quantity for item in session.line_items.data] == [2, 1]
    assert session.url is not None and session.url.startswith(fake.base_url)
    page = await fake.http().get(session.url)
    assert page.json()["amount_total"] == 3500
    sent = fake.requests(method="POST", path="/v1/checkout/sessions")[0].params
    assert sent["payment_intent_data"] == {"statement_descriptor_suffix": "ORDER 42"}


async def test_subscription_session_with_a_stored_recurring_price(
    client: stripe.StripeClient,
) -> None:
    product = await client.v1.products.create_async({"name": "Coffee box"})
    price = await client.v1.prices.create_async(
        {
            "product": product.id,
            "currency": "eur",
            "unit_amount": 1200,
            "recurring": {"interval": "month", "interval_count": 3},
        }
    )
    params = session_params("subscription", {"price": price.id, "quantity": 2})

    session = await client.v1.checkout.sessions.create_async(params)

    assert product.id.startswith("prod_") and price.id.startswith("price_")
    assert price.recurring is not None and price.recurring.interval_count == 3
    assert (session.mode, session.amount_total) == ("subscription", 2400)


async def test_errors_arrive_as_the_sdk_exceptions_stripe_would_cause(
    fake: RunningFakeStripe, client: stripe.StripeClient
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.checkout.sessions.create_async(
            cast("SessionCreateParams", {"line_items": [one_off_line(100)]})
        )
    with pytest.raises(stripe.InvalidRequestError) as unknown_id:
        await client.v1.checkout.sessions.retrieve_async("cs_test_does_not_exist")
    with pytest.raises(stripe.InvalidRequestError) as recurring_in_payment:
        await client.v1.checkout.sessions.create_async(session_params("payment", monthly_line(1)))
    with pytest.raises(stripe.InvalidRequestError) as typo:
        await client.v1.customers.create_async(cast(Any, {"emial": "x@example.com"}))
    with pytest.raises(stripe.AuthenticationError) as bad_key:
        await fake.client(api_key="sk_live_wrong").v1.customers.create_async({})

    assert (missing.value.http_status, missing.value.code, missing.value.param) == (
        400,
        "parameter_missing",
        "mode",
    )
    assert (unknown_id.value.http_status, unknown_id.value.code) == (404, "resource_missing")
    assert recurring_in_payment.value.http_status == 400
    assert typo.value.code == "parameter_unknown"
    assert bad_key.value.http_status == 401


async def test_a_request_without_an_api_key_gets_stripes_error_shape(
    fake: RunningFakeStripe,
) -> None:
    response = await fake.http().get("/v1/customers")

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"


# -- idempotency ------------------------------------------------------------------------------


async def test_an_idempotency_key_replays_the_first_response(
    fake: RunningFakeStripe, client: stripe.StripeClient
) -> None:
    key = str(uuid.uuid4())
    params = session_params("payment", one_off_line(700))

    first = await client.v1.checkout.sessions.create_async(params, {"idempotency_key": key})
    again = await client.v1.checkout.sessions.create_async(params, {"idempotency_key": key})

    assert again.id == first.id
    sessions = [o for o in fake.state.objects.values() if o["object"] == "checkout.session"]
    assert len(sessions) == 1
    assert [r.replayed for r in fake.requests(path="/v1/checkout/sessions")] == [False, True]


async def test_an_idempotency_key_reused_with_other_params_is_refused(
    client: stripe.StripeClient,
) -> None:
    key = str(uuid.uuid4())
    await client.v1.customers.create_async({"email": "a@example.com"}, {"idempotency_key": key})

    with pytest.raises(stripe.IdempotencyError):
        await client.v1.customers.create_async({"email": "b@example.com"}, {"idempotency_key": key})


# -- lifecycle and webhooks -------------------------------------------------------------------


async def test_completing_a_payment_delivers_a_signed_event_the_sdk_verifies(
    fake: RunningFakeStripe, client: stripe.StripeClient, inbox: WebhookInbox
) -> None:
    params = session_params(
        "payment",
        one_off_line(2500),
        payment_intent_data={"statement_descriptor_suffix": "STORE"},
    )
    session = await client.v1.checkout.sessions.create_async(params)

    report = await fake.action(f"checkout/sessions/{session.id}/complete")

    # What Stripe really sends for a card payment, in no particular order.
    assert sorted((e["type"], e["status_code"]) for e in report["events"]) == [
        ("charge.succeeded", 200),
        ("checkout.session.completed", 200),
        ("payment_intent.created", 200),
        ("payment_intent.succeeded", 200),
    ]
    (event,) = [e for e in inbox.events() if e.type == "checkout.session.completed"]
    assert event.id in {e["id"] for e in report["events"]}
    assert event.api_version == stripe.api_version
    paid = event.data.object
    assert (paid.id, paid.status, paid.payment_status) == (session.id, "complete", "paid")
    assert paid.metadata["order_id"] == params["metadata"]["order_id"]
    intent = await client.v1.payment_intents.retrieve_async(paid.payment_intent)
    assert (intent.status, intent.amount, intent.statement_descriptor_suffix) == (
        "succeeded",
        2500,
        "STORE",
    )


async def test_a_tampered_or_foreign_delivery_fails_verification(
    fake: RunningFakeStripe, client: stripe.StripeClient, inbox: WebhookInbox
) -> None:
    session = await client.v1.checkout.sessions.create_async(
        session_params("payment", one_off_line(100))
    )
    await fake.state.complete_checkout_session(session.id)
    body, header = next(r for r in inbox.received if b"checkout.session.completed" in r[0])
    tampered = body.replace(b'"amount_total": 100', b'"amount_total": 1')

    assert tampered != body
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(tampered, header, SECRET)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, header, "whsec_someone_else")


async def test_subscription_checkout_creates_a_paid_subscription_and_invoice(
    fake: RunningFakeStripe, client: stripe.StripeClient, inbox: WebhookInbox
) -> None:
    session, subscription = await paid_subscription(fake, client)

    types = sorted(event.type for event in inbox.events())
    assert types == [
        "charge.succeeded",
        "checkout.session.completed",
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "payment_intent.created",
        "payment_intent.succeeded",
    ]
    [invoice] = [e.data.object for e in inbox.events() if e.type == "invoice.paid"]
    assert invoice.parent.subscription_details.subscription == subscription.id
    # Only current-API shapes: the subscription is named under `parent`, nowhere else.
    assert "subscription" not in invoice and "paid" not in invoice
    assert (invoice.amount_paid, invoice.currency) == (900, "eur")
    assert invoice.billing_reason == "subscription_create"
    assert subscription.status == "active"
    assert plain(subscription.metadata) == {"plan": "monthly-box"}
    assert subscription.customer == session.customer
    [item] = subscription["items"]["data"]
    assert item["current_period_end"] > item["current_period_start"]
    assert "current_period_end" not in subscription


async def test_renewal_bills_the_next_period(
    fake: RunningFakeStripe, client: stripe.StripeClient, inbox: WebhookInbox
) -> None:
    _, subscription = await paid_subscription(fake, client)
    first_period_end = subscription["items"]["data"][0]["current_period_end"]

    report = await fake.action(f"subscriptions/{subscription.id}/renew")

    assert "invoice.paid" in [e["type"] for e in report["events"]]
    [invoice] = [
        e.data.object for e in inbox.events()[-len(report["events"]) :] if e.type == "invoice.paid"
    ]
    assert invoice.billing_reason == "subscription_cycle"
    assert invoice.lines.data[0].period.start == first_period_end
    renewed = await client.v1.subscriptions.retrieve_async(subscription.id)
    assert renewed["items"]["data"][0]["current_period_start"] == first_period_end


async def test_invoices_are_listed_by_subscription_status_and_creation_strictly(
    fake: RunningFakeStripe, client: stripe.StripeClient
) -> None:
    _, subscription = await paid_subscription(fake, client)
    await fake.state.renew_subscription(subscription.id)
    await fake.state.fail_renewal(subscription.id)

    listed = await client.v1.invoices.list_async(
        {"subscription": subscription.id, "status": "paid", "limit": 100}
    )
    reasons = [invoice.billing_reason for invoice in listed.data]
    assert reasons == ["subscription_cycle", "subscription_create"]  # newest first
    first = listed.data[-1]
    later = await client.v1.invoices.list_async(
        {"subscription": subscription.id, "status": "paid", "created": {"gt": first.created}}
    )
    newer = [i.id for i in listed.data if i.created > first.created]
    assert [i.id for i in later.data] == newer
    one = await client.v1.invoices.list_async({"subscription": subscription.id, "limit": 1})
    assert len(one.data) == 1 and one.has_more is True
    with pytest.raises(stripe.InvalidRequestError) as typo:
        await client.v1.invoices.list_async(cast(Any, {"subscripton": subscription.id}))
    assert typo.value.code == "parameter_unknown"
    with pytest.raises(stripe.InvalidRequestError) as status:
        await client.v1.invoices.list_async({"status": "settled"})
    assert status.value.param == "status"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        await client.v1.invoices.list_async({"subscription": "sub_does_not_exist"})
    assert (unknown.value.code, unknown.value.param) == ("resource_missing", "subscription")


async def test_a_failed_renewal_leaves_the_subscription_past_due(
    fake: RunningFakeStripe, client: stripe.StripeClient
) -> None:
    _, subscription = await paid_subscription(fake, client)

    report = await fake.state.fail_renewal(subscription.id)

    assert sorted(d.event_type for d in report.deliveries) == [
        "customer.subscription.updated",
        "invoice.created",
        "invoice.finalized",
        "invoice.payment_failed",
    ]
    assert report.object["status"] == "past_due"


async def test_cancel_at_period_end_through_the_api_then_the_period_ends(
    fake: RunningFakeStripe, client: stripe.StripeClient, inbox: WebhookInbox
) -> None:
    _, subscription = await paid_subscription(fake, client)

    updated = await client.v1.subscriptions.update_async(
        subscription.id, {"cancel_at_period_end": True}
    )
    await fake.wait_for_deliveries()
    report = await fake.state.renew_subscription(subscription.id)

    assert updated.cancel_at_period_end is True
    change = inbox.events()[-2]
    assert change.type == "customer.subscription.updated"
    assert plain(change.data.previous_attributes)["cancel_at_period_end"] is False
    assert [d.event_type for d in report.deliveries] == ["customer.subscription.deleted"]
    assert report.object["status"] == "canceled"


async def test_canceling_through_the_api_emits_deleted(
    fake: RunningFakeStripe, client: stripe.StripeClient, inbox: WebhookInbox
) -> None:
    _, subscription = await paid_subscription(fake, client)

    canceled = await client.v1.subscriptions.cancel_async(subscription.id)
    await fake.wait_for_deliveries()

    assert canceled.status == "canceled"
    assert inbox.events()[-1].type == "customer.subscription.deleted"


async def test_resend_delivers_the_same_event_again(
    fake: RunningFakeStripe, client: stripe.StripeClient, inbox: WebhookInbox
) -> None:
    session = await client.v1.checkout.sessions.create_async(
        session_params("payment", one_off_line(300))
    )
    inbox.status_code = 500  # the first delivery fails at the receiver
    first = await fake.action(f"checkout/sessions/{session.id}/complete")
    inbox.status_code = 200
    [completed] = [e for e in first["events"] if e["type"] == "checkout.session.completed"]
    event_id = completed["id"]

    again = await fake.action(f"events/{event_id}/resend")

    assert completed["status_code"] == 500
    assert again["events"] == [
        {"id": event_id, "type": "checkout.session.completed", "status_code": 200, "error": None}
    ]
    assert [event.id for event in inbox.events()].count(event_id) == 2


async def test_delayed_payment_succeeds_or_fails_later(
    fake: RunningFakeStripe, client: stripe.StripeClient
) -> None:
    ok = await client.v1.checkout.sessions.create_async(session_params("payment", one_off_line(1)))
    ko = await client.v1.checkout.sessions.create_async(session_params("payment", one_off_line(1)))

    pending = await fake.action(f"checkout/sessions/{ok.id}/complete", **{"async": "true"})
    settled = await fake.action(f"checkout/sessions/{ok.id}/async_succeeded")
    await fake.action(f"checkout/sessions/{ko.id}/complete", **{"async": "true"})
    refused = await fake.action(f"checkout/sessions/{ko.id}/async_failed")

    assert pending["object"]["payment_status"] == "unpaid"
    assert settled["object"]["payment_status"] == "paid"
    assert "checkout.session.async_payment_succeeded" in {e["type"] for e in settled["events"]}
    assert "checkout.session.async_payment_failed" in {e["type"] for e in refused["events"]}


async def test_expiring_a_session_emits_expired_and_it_cannot_be_paid(
    fake: RunningFakeStripe, client: stripe.StripeClient, inbox: WebhookInbox
) -> None:
    session = await client.v1.checkout.sessions.create_async(
        session_params("payment", one_off_line(100))
    )

    expired = await client.v1.checkout.sessions.expire_async(session.id)
    await fake.wait_for_deliveries()
    refused = await fake.http().post(f"/_test/checkout/sessions/{session.id}/complete")

    assert expired.status == "expired"
    assert [event.type for event in inbox.events()] == ["checkout.session.expired"]
    assert refused.status_code == 400


# -- instances and signing helpers ------------------------------------------------------------


async def test_two_apps_keep_separate_state_and_work_in_process() -> None:
    headers = {"Authorization": "Bearer sk_test_in_process"}
    apps = [create_fake_stripe_app(), create_fake_stripe_app()]
    transports = [httpx.ASGITransport(app=app) for app in apps]
    async with (
        httpx.AsyncClient(transport=transports[0], base_url="http://a", headers=headers) as a,
        httpx.AsyncClient(transport=transports[1], base_url="http://b", headers=headers) as b,
    ):
        created = (await a.post("/v1/customers", data={"email": "x@example.com"})).json()
        in_a = await a.get(f"/v1/customers/{created['id']}")
        in_b = await b.get(f"/v1/customers/{created['id']}")

    assert (in_a.status_code, in_b.status_code) == (200, 404)
    assert in_b.json()["error"]["code"] == "resource_missing"


async def test_sign_webhook_produces_headers_the_sdk_accepts_until_they_are_too_old() -> None:
    payload = json.dumps({"id": "evt_test", "object": "event", "type": "ping", "data": {}}).encode()

    fresh = sign_webhook(payload, SECRET)
    stale = sign_webhook(payload, SECRET, timestamp=int(time.time()) - 3600)

    assert stripe.Webhook.construct_event(payload, fresh, SECRET).id == "evt_test"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, stale, SECRET)


# -- strict as Stripe: every request Stripe refuses, refused ----------------------------------


def _with_price_data(**changes: Any) -> dict[str, Any]:
    line = one_off_line(1000)
    line["price_data"].update(changes)
    return line


BAD_SESSIONS: dict[str, tuple[dict[str, Any], str]] = {
    "unknown nested parameter": (
        session_params(
            "payment",
            one_off_line(1000),
            payment_intent_data={"statement_descriptor_sufix": "MUGS"},
        ),
        "payment_intent_data[statement_descriptor_sufix]",
    ),
    "unknown deeply nested parameter": (
        session_params(
            "payment",
            _with_price_data(product_data={"name": "Mug", "colour": "blue"}),
        ),
        "line_items[0][price_data][product_data][colour]",
    ),
    "full descriptor for cards": (
        session_params(
            "payment", one_off_line(1000), payment_intent_data={"statement_descriptor": "MUGS"}
        ),
        "payment_intent_data[statement_descriptor]",
    ),
    "suffix without a letter": (
        session_params(
            "payment",
            one_off_line(1000),
            payment_intent_data={"statement_descriptor_suffix": "12345"},
        ),
        "payment_intent_data[statement_descriptor_suffix]",
    ),
    "interval over 3 years": (
        session_params("subscription", monthly_line(1000, interval_count=37)),
        "line_items[0][price_data][recurring][interval_count]",
    ),
    "currency zzz": (
        session_params("payment", _with_price_data(currency="zzz")),
        "line_items[0][price_data][currency]",
    ),
    "unit_amount 1e9": (
        session_params("payment", _with_price_data(unit_amount=1_000_000_000)),
        "line_items[0][price_data][unit_amount]",
    ),
    "101 line items": (
        session_params("payment", *[one_off_line(100) for _ in range(101)]),
        "line_items",
    ),
    "21 recurring items": (
        session_params("subscription", *[monthly_line(100) for _ in range(21)]),
        "line_items",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SESSIONS))
async def test_each_session_stripe_refuses_is_refused_and_creates_nothing(
    fake: RunningFakeStripe, client: stripe.StripeClient, case: str
) -> None:
    params, param = BAD_SESSIONS[case]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.create_async(cast("SessionCreateParams", params))
    assert caught.value.param == param
    assert not [o for o in fake.state.objects.values() if o["object"] == "checkout.session"]


async def test_the_limits_themselves_are_accepted(client: stripe.StripeClient) -> None:
    await client.v1.checkout.sessions.create_async(
        session_params(
            "payment",
            *[one_off_line(100) for _ in range(99)],
            _with_price_data(unit_amount=99_999_999),
            payment_intent_data={"statement_descriptor_suffix": "MUGS 24"},
        )
    )
    await client.v1.checkout.sessions.create_async(
        session_params("subscription", monthly_line(100, interval_count=36))
    )


async def test_idempotency_keys_expire_after_24_hours() -> None:
    now = [1_800_000_000.0]
    async with running_fake_stripe(clock=lambda: now[0]) as running:
        client = running.client()
        key = {"idempotency_key": f"k-{uuid.uuid4()}"}
        first = await client.v1.customers.create_async({"email": "a@example.com"}, options=key)
        now[0] += 24 * 3600 - 1
        replay = await client.v1.customers.create_async({"email": "a@example.com"}, options=key)
        assert replay.id == first.id
        now[0] += 1
        fresh = await client.v1.customers.create_async({"email": "b@example.com"}, options=key)
        assert fresh.id != first.id
