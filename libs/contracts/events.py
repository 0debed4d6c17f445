"""Every event payload Store publishes, by producer. Each is registered under its type.

Consumers rely on these: add optional fields freely, but rename or retype nothing — publish
a new version instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from libs.contracts.common import Owner
from libs.contracts.envelope import Contract, Event, event

Interval = Literal["day", "week", "month", "year"]


# --- catalog ---------------------------------------------------------------------------------


@event("catalog.product.changed.v1")
class ProductChanged(Event):
    """A product was created or its data changed."""

    product_key: str
    active: bool
    shippable: bool
    tax_code: str | None = None
    names: dict[str, str] = Field(default_factory=dict, description="Name per locale.")
    default_locale: str | None = Field(None, description="The locale names fall back to.")
    sellable: bool | None = Field(
        None, description="Active with at least one active price (listed in the shop)."
    )


@event("catalog.pricing.changed.v1")
class PricingChanged(Event):
    """A price was created, or deactivated; carries what a cache of prices needs."""

    pricing_id: str
    product_key: str
    unit_amount: int = Field(ge=0)
    currency: str
    interval: Interval | None = None
    interval_count: int = 1
    active: bool = True
    replaced_by: str | None = None


# --- cart ------------------------------------------------------------------------------------


class CartLineSnapshot(Contract):
    pricing_id: str
    quantity: int = Field(ge=1)


@event("cart.cart.merged.v1")
class CartMerged(Event):
    """An anonymous cart's lines moved into a user's cart."""

    cart_id: str
    anonymous_id: str
    user_id: str
    lines: list[CartLineSnapshot]


@event("cart.cart.checked_out.v1")
class CartCheckedOut(Event):
    """A cart was frozen for an order; it will not change any more."""

    cart_id: str
    order_id: str
    owner: Owner
    lines: list[CartLineSnapshot]


@event("identity.anonymous.merged.v1")
class AnonymousMerged(Event):
    """An anonymous shopper logged in: everything of `anonymous_id` now belongs to `user_id`."""

    anonymous_id: str
    user_id: str


# --- orders ----------------------------------------------------------------------------------


@event("orders.order.created.v1")
class OrderCreated(Event):
    order_id: str
    number: str
    owner: Owner
    customer_id: str | None = None
    currency: str
    total: int = Field(ge=0)


@event("orders.order.paid.v1")
class OrderPaid(Event):
    """An order was paid. Published once per order."""

    order_id: str
    number: str
    owner: Owner
    customer_id: str | None = None
    currency: str
    total: int = Field(ge=0)
    paid_at: datetime
    attempt_id: str | None = None


# --- payments --------------------------------------------------------------------------------


@event("payments.payment.succeeded.v1")
class PaymentSucceeded(Event):
    attempt_id: str
    order_id: str
    amount: int = Field(ge=0)
    currency: str
    provider: str
    provider_reference: str | None = None
    succeeded_at: datetime


@event("payments.payment.failed.v1")
class PaymentFailed(Event):
    attempt_id: str
    order_id: str
    reason: str | None = None


@event("payments.payment.expired.v1")
class PaymentExpired(Event):
    attempt_id: str
    order_id: str


def _example(example: dict[str, Any]) -> ConfigDict:
    return Contract.model_config | {"json_schema_extra": {"examples": [example]}}


@event("payments.payment.refunded.v1")
class PaymentRefunded(Event):
    """Money that must not stay was sent back through the provider: a second payment of a paid
    order, a payment that arrived after its checkout closed, or one that did not match."""

    model_config = _example(
        {
            "refund_id": "5f0c7a7e-3f57-4a43-9d56-3c1f6a1f5d10",
            "attempt_id": "8d2c1a30-9e4b-4f1e-a0b2-2b7f7c1e9a11",
            "order_id": "0b9e3c55-7a51-4c8e-8f3e-6c2d9b1e4a22",
            "amount": 2500,
            "currency": "EUR",
            "provider": "stripe",
            "provider_refund_id": "re_3QxYz",
            "reason": "order_already_paid",
            "refunded_at": "2027-03-01T12:00:00Z",
        }
    )

    refund_id: str
    attempt_id: str
    order_id: str
    amount: int = Field(ge=0)
    currency: str
    provider: str
    provider_refund_id: str | None = None
    reason: str
    refunded_at: datetime


@event("payments.payment.flagged.v1")
class PaymentFlagged(Event):
    """A provider reported money that does not match its attempt (amount or currency): it did
    not pay the order, and an operator should look."""

    model_config = _example(
        {
            "attempt_id": "8d2c1a30-9e4b-4f1e-a0b2-2b7f7c1e9a11",
            "order_id": "0b9e3c55-7a51-4c8e-8f3e-6c2d9b1e4a22",
            "reason": "amount_mismatch",
            "expected_amount": 2500,
            "expected_currency": "EUR",
            "reported_amount": 250,
            "reported_currency": "EUR",
            "provider": "stripe",
            "provider_reference": "pi_3QxYz",
        }
    )

    attempt_id: str
    order_id: str
    reason: str
    expected_amount: int
    expected_currency: str
    reported_amount: int | None = None
    reported_currency: str | None = None
    provider: str
    provider_reference: str | None = None


@event("payments.subscription.activated.v1")
class SubscriptionActivated(Event):
    subscription_id: str
    order_id: str
    owner: Owner
    status: str
    current_period_end: datetime | None = None


@event("payments.subscription.renewed.v1")
class SubscriptionRenewed(Event):
    subscription_id: str
    order_id: str
    amount: int = Field(ge=0)
    currency: str
    current_period_end: datetime | None = None
    invoice_reference: str | None = None


@event("payments.subscription.canceled.v1")
class SubscriptionCanceled(Event):
    subscription_id: str
    order_id: str
    at_period_end: bool
    canceled_at: datetime | None = None


class CustomerFacts(Event):
    customer_id: str
    owner: Owner
    is_default: bool
    name: str
    email: str
    country: str


@event("payments.customer.created.v1")
class CustomerCreated(CustomerFacts):
    pass


@event("payments.customer.changed.v1")
class CustomerChanged(CustomerFacts):
    deleted: bool = False
