"""The Stripe adapter's pure parts: Stripe's minor units, descriptors, params, event shapes."""

from __future__ import annotations

from typing import Any

import pytest

from libs.contracts.payments import PaymentLine
from libs.runtime.problems import InvalidInput
from services.payments.domain import InvalidWebhookPayload
from services.payments.provider import CheckoutRequest
from services.payments.stripe_provider import (
    STRIPE_API_VERSION,
    StripeProvider,
    check_stripe_limits,
    from_stripe_amount,
    normalize_stripe_event,
    statement_descriptor_suffix,
    to_stripe_amount,
)


@pytest.mark.parametrize(
    ("amount", "currency", "stripe_amount"),
    [
        (1999, "EUR", 1999),
        (500, "JPY", 500),  # zero-decimal both in ISO 4217 and at Stripe
        (5, "ISK", 500),  # ISO: 0 decimals; Stripe: two-decimal for backwards compatibility
        (12345, "HUF", 12345),  # both two-decimal
        (5120, "KWD", 5120),  # three-decimal, last digit 0
        (1000, "IQD", 100),  # ISO: 3 decimals; Stripe: 2
        (2500, "MGA", 25),  # ISO: 2 decimals; Stripe: zero-decimal
    ],
)
def test_amounts_convert_to_stripe_units_and_back(
    amount: int, currency: str, stripe_amount: int
) -> None:
    assert to_stripe_amount(amount, currency) == stripe_amount
    assert from_stripe_amount(stripe_amount, currency) == amount


@pytest.mark.parametrize(("amount", "currency"), [(5124, "KWD"), (2550, "MGA"), (1001, "IQD")])
def test_amounts_stripe_cannot_express_are_refused(amount: int, currency: str) -> None:
    with pytest.raises(ValueError):
        to_stripe_amount(amount, currency)
    provider = StripeProvider(secret_key="sk_test_x", webhook_secrets=["whsec_x"])
    line = PaymentLine(pricing_id="p", name="x", unit_amount=amount, quantity=1)
    with pytest.raises(InvalidInput) as caught:
        provider.check_limits(currency, [line])
    assert caught.value.code == "amount_not_chargeable"
    assert caught.value.errors and caught.value.errors[0].field == "lines.0.unit_amount"


def line(**values: Any) -> PaymentLine:
    return PaymentLine(
        **{"pricing_id": "p", "name": "x", "unit_amount": 1000, "quantity": 1, **values}
    )


@pytest.mark.parametrize(
    ("lines", "currency", "code", "field"),
    [
        ([line()] * 101, "EUR", "too_many_lines", "lines"),
        ([line(interval="month")] * 21, "EUR", "too_many_lines", "lines"),
        ([line(interval="month"), *[line()] * 21], "EUR", "too_many_lines", "lines"),
        ([line(unit_amount=1_000_000_000)], "EUR", "amount_too_large", "lines.0.unit_amount"),
        ([line(unit_amount=60_000_000, quantity=2)], "EUR", "amount_too_large", "amount"),
        ([line(unit_amount=49)], "EUR", "amount_too_small", "amount"),
        ([line(unit_amount=49)], "JPY", "amount_too_small", "amount"),
        (
            [line(interval="month", interval_count=37)],
            "EUR",
            "interval_too_long",
            "lines.0.interval_count",
        ),
        (
            [line(interval="year", interval_count=4)],
            "EUR",
            "interval_too_long",
            "lines.0.interval_count",
        ),
        (
            [line(interval="day", interval_count=1096)],
            "EUR",
            "interval_too_long",
            "lines.0.interval_count",
        ),
    ],
    ids=[
        "101-lines",
        "21-recurring",
        "21-one-time-in-subscription",
        "unit-over-8-digits",
        "total-over-8-digits",
        "under-minimum",
        "under-minimum-jpy",
        "37-months",
        "4-years",
        "1096-days",
    ],
)
def test_stripes_limits_are_a_clear_422_before_any_call(
    lines: list[PaymentLine], currency: str, code: str, field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_stripe_limits(currency, lines)
    assert caught.value.code == code
    assert caught.value.errors and caught.value.errors[0].field == field


def test_what_stripe_accepts_passes_its_limits() -> None:
    check_stripe_limits("EUR", [line()] * 100)
    check_stripe_limits("EUR", [line(interval="month", interval_count=36)] * 20 + [line()] * 20)
    check_stripe_limits("JPY", [line(unit_amount=50, interval="year", interval_count=3)])


def test_the_api_version_is_the_one_the_sdk_is_typed_for() -> None:
    # The SDK's parameter and object types describe its pinned version: they must agree.
    import stripe

    assert STRIPE_API_VERSION == stripe.api_version


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Store Mug", "Store Mug"),
        ("A very long descriptor that goes on", "A very long descriptor"),
        ("<Ma'g*\"ic>", "Magic"),
        ("Käse", "Kse"),
        ("12345", None),  # needs a letter
        ("", None),
        (None, None),
    ],
)
def test_statement_descriptor_suffix_is_what_stripe_accepts(
    given: str | None, expected: str | None
) -> None:
    assert statement_descriptor_suffix(given) == expected


def request(mode: str = "payment", **overrides: Any) -> CheckoutRequest:
    lines = overrides.pop(
        "lines",
        [PaymentLine(pricing_id="p1", name="Mug", unit_amount=5, quantity=3)],
    )
    values: dict[str, Any] = {
        "attempt_id": "a1",
        "order_id": "o1",
        "order_number": "2027-000001",
        "mode": mode,
        "currency": "ISK",
        "lines": lines,
        "success_url": "https://shop.example/ok",
        "cancel_url": "https://shop.example/cart",
        "statement_descriptor": "Store Mugs",
        "provider_customer_id": "cus_1",
        **overrides,
    }
    return CheckoutRequest(**values)


def test_checkout_params_in_payment_mode() -> None:
    provider = StripeProvider(secret_key="sk_test_x", webhook_secrets=["whsec_x"])
    params = provider.checkout_params(request())
    assert params["mode"] == "payment" and params["customer"] == "cus_1"
    assert params["line_items"] == [
        {
            "quantity": 3,
            "price_data": {
                "currency": "isk",
                "unit_amount": 500,
                "product_data": {"name": "Mug", "metadata": {"pricing_id": "p1"}},
            },
        }
    ]
    metadata = {"order_id": "o1", "attempt_id": "a1", "order_number": "2027-000001"}
    assert params["metadata"] == metadata
    assert params["payment_intent_data"] == {
        "metadata": metadata,
        "statement_descriptor_suffix": "Store Mugs",
    }
    assert "subscription_data" not in params
    assert request().idempotency_key == "store-checkout-a1"


def test_checkout_params_in_subscription_mode() -> None:
    provider = StripeProvider(secret_key="sk_test_x", webhook_secrets=["whsec_x"])
    lines = [
        PaymentLine(pricing_id="p2", name="Coffee", unit_amount=900, quantity=1, interval="month"),
        PaymentLine(pricing_id="p1", name="Mug", unit_amount=1200, quantity=1),
    ]
    params = provider.checkout_params(request("subscription", currency="EUR", lines=lines))
    recurring = params["line_items"][0]["price_data"]["recurring"]
    assert recurring == {"interval": "month", "interval_count": 1}
    assert "recurring" not in params["line_items"][1]["price_data"]
    assert params["subscription_data"]["metadata"]["attempt_id"] == "a1"
    assert "payment_intent_data" not in params


def event(event_type: str, obj: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": "evt_1",
        "object": "event",
        "type": event_type,
        "created": 1_800_000_000,
        "data": {"object": obj},
        **extra,
    }


def test_a_completed_session_normalizes() -> None:
    normalized = normalize_stripe_event(
        event(
            "checkout.session.completed",
            {
                "id": "cs_1",
                "object": "checkout.session",
                "metadata": {"attempt_id": "a1", "order_id": "o1"},
                "payment_status": "paid",
                "amount_total": 500,
                "currency": "isk",
                "payment_intent": "pi_1",
                "subscription": None,
            },
        )
    )
    assert normalized.kind == "checkout_completed" and normalized.paid
    assert (normalized.attempt_id, normalized.order_id, normalized.session_id) == (
        "a1",
        "o1",
        "cs_1",
    )
    assert (normalized.amount, normalized.currency) == (5, "ISK")
    assert normalized.provider_reference == "pi_1"


def test_an_unpaid_completion_waits_for_the_async_payment() -> None:
    normalized = normalize_stripe_event(
        event(
            "checkout.session.completed",
            {"id": "cs_1", "metadata": {}, "payment_status": "unpaid", "client_reference_id": "o9"},
        )
    )
    assert not normalized.paid and normalized.order_id == "o9"


def test_invoices_normalize_in_the_current_api_shape_only() -> None:
    new_shape = normalize_stripe_event(
        event(
            "invoice.paid",
            {
                "id": "in_1",
                "billing_reason": "subscription_cycle",
                "amount_paid": 900,
                "currency": "eur",
                "parent": {
                    "subscription_details": {
                        "subscription": "sub_1",
                        "metadata": {"attempt_id": "a1", "order_id": "o1"},
                    }
                },
                "lines": {"data": [{"period": {"start": 1, "end": 1_802_592_000}}]},
            },
        )
    )
    assert new_shape.kind == "invoice_paid" and new_shape.billing_reason == "subscription_cycle"
    assert new_shape.subscription is not None and new_shape.subscription.id == "sub_1"
    assert new_shape.attempt_id == "a1" and new_shape.invoice_id == "in_1"
    assert new_shape.amount == 900 and new_shape.period_end is not None
    # Shapes removed from the API are not read: Store is written for one API version.
    removed_shape = normalize_stripe_event(
        event(
            "invoice.payment_failed",
            {
                "id": "in_2",
                "billing_reason": "subscription_create",
                "subscription": "sub_2",
                "subscription_details": {"metadata": {"attempt_id": "a2"}},
                "amount_due": 900,
                "currency": "eur",
            },
        )
    )
    assert removed_shape.subscription is None and removed_shape.attempt_id is None


def test_subscription_periods_come_from_the_items() -> None:
    on_items = normalize_stripe_event(
        event(
            "customer.subscription.updated",
            {
                "id": "sub_1",
                "status": "past_due",
                "cancel_at_period_end": True,
                "items": {"data": [{"current_period_end": 1_802_592_000}]},
                "metadata": {"attempt_id": "a1"},
            },
        )
    )
    assert on_items.subscription is not None
    assert on_items.subscription.status == "past_due" and on_items.subscription.cancel_at_period_end
    assert on_items.subscription.current_period_end is not None
    top = normalize_stripe_event(
        event("customer.subscription.deleted", {"id": "sub_1", "current_period_end": 1_802_592_000})
    )
    assert top.kind == "subscription_deleted"
    assert top.subscription is not None and top.subscription.current_period_end is None


def test_other_events_are_ignored() -> None:
    assert normalize_stripe_event(event("charge.refunded", {"id": "ch_1"})).kind == "ignored"


@pytest.mark.parametrize(
    ("stripe_status", "status"),
    [
        ("pending", "pending"),
        ("requires_action", "pending"),
        ("succeeded", "succeeded"),
        ("failed", "failed"),
        ("canceled", "canceled"),
    ],
)
def test_a_refund_event_names_stores_refund_and_its_status(stripe_status: str, status: str) -> None:
    refund = {
        "id": "re_1",
        "object": "refund",
        "amount": 2500,
        "currency": "eur",
        "status": stripe_status,
        "failure_reason": "lost_or_stolen_card" if stripe_status == "failed" else None,
        "metadata": {"refund_id": "r-1", "attempt_id": "a-1"},
    }
    normalized = normalize_stripe_event(event("refund.updated", refund))
    assert normalized.kind == "refund_updated" and normalized.refund is not None
    assert (normalized.refund.id, normalized.refund.status) == ("re_1", status)
    assert normalized.refund.store_refund_id == "r-1"
    assert (normalized.refund.amount, normalized.refund.currency) == (2500, "EUR")
    if stripe_status == "failed":
        assert normalized.refund.failure_reason == "lost_or_stolen_card"


def test_a_refund_of_a_status_store_does_not_know_is_refused() -> None:
    with pytest.raises(InvalidWebhookPayload):
        normalize_stripe_event(event("refund.failed", {"id": "re_1", "status": "lost"}))
