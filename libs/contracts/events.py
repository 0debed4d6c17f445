"""Every event payload Store publishes, by producer. Each is registered under its type and
carries one example instance (docs/events.md is generated from them).

Consumers rely on these: add optional fields freely, but rename or retype nothing — publish
a new version instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from libs.contracts.common import Owner
from libs.contracts.envelope import Contract, Event, event, example

Interval = Literal["day", "week", "month", "year"]


# --- catalog ---------------------------------------------------------------------------------


@event("catalog.product.changed.v1")
class ProductChanged(Event):
    """A product was created or its data changed."""

    model_config = example(
        {
            "product_key": "mug",
            "active": True,
            "shippable": True,
            "tax_code": "standard",
            "names": {"en": "Mug", "de": "Tasse"},
            "default_locale": "en",
            "sellable": True,
        }
    )

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

    model_config = example(
        {
            "pricing_id": "pr_mug_eur",
            "product_key": "mug",
            "unit_amount": 1200,
            "currency": "EUR",
            "interval": None,
            "interval_count": 1,
            "active": True,
            "replaced_by": None,
        }
    )

    pricing_id: str
    product_key: str
    unit_amount: int = Field(ge=0)
    currency: str
    interval: Interval | None = None
    interval_count: int = 1
    active: bool = True
    replaced_by: str | None = None


@event("catalog.stock.changed.v1")
class StockChanged(Event):
    """A product's stock changed: set by an operator, reserved or released by a checkout, or
    sold. `available` is `on_hand - reserved`; it never goes below zero (a sale of stock no
    longer held may take `on_hand` below `reserved`: the order is backordered)."""

    product_key: str
    tracked: bool
    on_hand: int
    reserved: int = Field(ge=0)
    available: int | None = Field(description="on_hand - reserved, at least 0; null: untracked.")
    reason: Literal["set", "reserved", "released", "sold", "backordered"]
    order_id: str | None = Field(None, description="The order that reserved, released or sold.")
    actor: str | None = Field(
        None, description="The operator who did it (admin token `sub`); null otherwise."
    )

    model_config = example(
        {
            "product_key": "mug",
            "tracked": True,
            "on_hand": 10,
            "reserved": 2,
            "available": 8,
            "reason": "reserved",
            "order_id": "0b9e3c55-7a51-4c8e-8f3e-6c2d9b1e4a22",
        }
    )


# --- cart ------------------------------------------------------------------------------------


class CartLineSnapshot(Contract):
    """One line of a cart: a price and how many."""

    pricing_id: str
    quantity: int = Field(ge=1)


@event("cart.cart.merged.v1")
class CartMerged(Event):
    """An anonymous cart's lines moved into a user's cart."""

    model_config = example(
        {
            "cart_id": "c_7d2f",
            "anonymous_id": "anon_5b1e",
            "user_id": "user_42",
            "lines": [{"pricing_id": "pr_mug_eur", "quantity": 2}],
        }
    )

    cart_id: str
    anonymous_id: str
    user_id: str
    lines: list[CartLineSnapshot]


@event("cart.cart.checked_out.v1")
class CartCheckedOut(Event):
    """A cart was frozen for an order; it will not change any more."""

    model_config = example(
        {
            "cart_id": "c_7d2f",
            "order_id": "3f1c2a9e-8b7d-4e21-9a65-0c4b5d6e7f80",
            "owner": {"kind": "user", "id": "user_42"},
            "lines": [{"pricing_id": "pr_mug_eur", "quantity": 2}],
        }
    )

    cart_id: str
    order_id: str
    owner: Owner
    lines: list[CartLineSnapshot]


@event("identity.anonymous.merged.v1")
class AnonymousMerged(Event):
    """An anonymous shopper logged in: everything of `anonymous_id` now belongs to `user_id`."""

    model_config = example({"anonymous_id": "anon_5b1e", "user_id": "user_42"})

    anonymous_id: str
    user_id: str


# --- orders --------------------------------------------------------------------------------

ORDER_ID = "3f1c2a9e-8b7d-4e21-9a65-0c4b5d6e7f80"
ATTEMPT_ID = "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"
SUBSCRIPTION_ID = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
CUSTOMER_ID = "0d1e2f3a-4b5c-4d6e-8f7a-8b9c0d1e2f3a"
_ORDER = {
    "order_id": ORDER_ID,
    "number": "2026-000042",
    "owner": {"kind": "user", "id": "user_42"},
    "customer_id": CUSTOMER_ID,
    "currency": "EUR",
    "total": 2400,
}


class PaidLine(Contract):
    """One line of a paid order: what to hand over, and whether it ships."""

    pricing_id: str
    product_key: str
    name: str
    quantity: int = Field(ge=1)
    shippable: bool = Field(
        False, description="A physical good to ship (false for services and digital goods)."
    )


class ShippedTo(Contract):
    """How and where a paid order's goods are shipped, as the order froze it."""

    method_code: str
    method_name: str
    name: str = Field(description="The recipient.")
    phone: str | None = None
    line1: str
    line2: str | None = None
    city: str
    postal_code: str
    state: str | None = None
    country: str = Field(description="ISO 3166-1 alpha-2.")


_SHIPPED_TO = {
    "method_code": "standard",
    "method_name": "Standard shipping",
    "name": "Ada Lovelace",
    "phone": None,
    "line1": "Unter den Linden 1",
    "line2": None,
    "city": "Berlin",
    "postal_code": "10117",
    "state": None,
    "country": "DE",
}


@event("orders.order.created.v1")
class OrderCreated(Event):
    """An order was prepared from a checked-out cart; it is not paid yet."""

    order_id: str
    number: str
    owner: Owner
    customer_id: str | None = None
    currency: str
    total: int = Field(ge=0)
    shipping: ShippedTo | None = Field(
        None,
        description="Where the goods go; null when nothing ships. Added within v1: null from "
        "older producers.",
    )

    model_config = example({**_ORDER, "shipping": _SHIPPED_TO})


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
    lines: list[PaidLine] = Field(
        default_factory=list,
        description="What was bought. Added within v1: empty from older producers.",
    )
    shipping: ShippedTo | None = Field(
        None,
        description="Where the goods go; null when nothing ships. Added within v1: null from "
        "older producers.",
    )

    model_config = example(
        {
            **_ORDER,
            "paid_at": "2026-03-01T12:00:05Z",
            "attempt_id": ATTEMPT_ID,
            "lines": [
                {
                    "pricing_id": "pr_mug_eur",
                    "product_key": "mug",
                    "name": "Mug",
                    "quantity": 2,
                    "shippable": True,
                }
            ],
            "shipping": _SHIPPED_TO,
        }
    )


class OrderLineRef(Contract):
    """One line of an order by what was bought and how many."""

    pricing_id: str
    product_key: str
    name: str
    quantity: int = Field(ge=1)


@event("orders.order.canceled.v1")
class OrderCanceled(Event):
    """An unpaid order was canceled, by its shopper or an operator: its stock is released and
    its open checkouts are closed; money that lands for it anyway is refunded. Published once
    per order."""

    order_id: str
    number: str
    owner: Owner
    customer_id: str | None = None
    currency: str
    total: int = Field(ge=0)
    canceled_at: datetime
    canceled_by: Literal["shopper", "operator"]
    reason: str | None = None
    actor: str | None = Field(
        None, description="The operator who did it (admin token `sub`); null otherwise."
    )

    model_config = example(
        {
            **_ORDER,
            "canceled_at": "2026-03-01T12:10:00Z",
            "canceled_by": "shopper",
            "reason": None,
        }
    )


@event("orders.order.fulfilled.v1")
class OrderFulfilled(Event):
    """Goods of a paid order were handed to a carrier (one event per fulfilment).
    `fulfillment_status` is the order's after it: `partially_fulfilled` or `fulfilled`."""

    order_id: str
    number: str
    owner: Owner
    fulfillment_id: str
    carrier: str
    tracking_number: str
    tracking_url: str | None = None
    lines: list[OrderLineRef]
    fulfillment_status: Literal["partially_fulfilled", "fulfilled"]
    created_at: datetime
    actor: str | None = Field(
        None, description="The operator who did it (admin token `sub`); null otherwise."
    )

    model_config = example(
        {
            "order_id": ORDER_ID,
            "number": "2026-000042",
            "owner": {"kind": "user", "id": "user_42"},
            "fulfillment_id": "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "carrier": "DHL",
            "tracking_number": "00340434161234567890",
            "tracking_url": "https://www.dhl.de/de/privatkunden.html?piececode=00340434161234567890",
            "lines": [
                {"pricing_id": "pr_mug_eur", "product_key": "mug", "name": "Mug", "quantity": 2}
            ],
            "fulfillment_status": "fulfilled",
            "created_at": "2026-03-02T09:00:00Z",
        }
    )


class BackorderedLine(Contract):
    """A product of a paid order whose stock was no longer held for it."""

    product_key: str
    quantity: int = Field(ge=1, description="Units sold without stock to cover them.")


@event("orders.order.backordered.v1")
class OrderBackordered(Event):
    """A payment landed after the order's stock reservation was released (its checkout had
    expired) and the stock had gone meanwhile: the order is paid and waits for stock. It is
    never silently oversold. Published once per order."""

    order_id: str
    number: str
    owner: Owner
    lines: list[BackorderedLine]
    at: datetime

    model_config = example(
        {
            "order_id": ORDER_ID,
            "number": "2026-000042",
            "owner": {"kind": "user", "id": "user_42"},
            "lines": [{"product_key": "mug", "quantity": 2}],
            "at": "2026-03-01T12:00:06Z",
        }
    )


# --- payments --------------------------------------------------------------------------------


@event("payments.payment.succeeded.v1")
class PaymentSucceeded(Event):
    """A payment attempt for an order succeeded at the provider."""

    attempt_id: str
    order_id: str
    amount: int = Field(ge=0)
    currency: str
    provider: str
    provider_reference: str | None = None
    succeeded_at: datetime

    model_config = example(
        {
            "attempt_id": ATTEMPT_ID,
            "order_id": ORDER_ID,
            "amount": 2400,
            "currency": "EUR",
            "provider": "stripe",
            "provider_reference": "pi_3Mtw",
            "succeeded_at": "2026-03-01T12:00:04Z",
        }
    )


@event("payments.payment.failed.v1")
class PaymentFailed(Event):
    """A payment attempt failed (declined, or canceled by the shopper); the order stays unpaid."""

    attempt_id: str
    order_id: str
    reason: str | None = None

    model_config = example(
        {"attempt_id": ATTEMPT_ID, "order_id": ORDER_ID, "reason": "card_declined"}
    )


@event("payments.payment.expired.v1")
class PaymentExpired(Event):
    """A payment attempt's checkout session expired before it was paid."""

    attempt_id: str
    order_id: str

    model_config = example({"attempt_id": ATTEMPT_ID, "order_id": ORDER_ID})


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


RefundReason = Field(
    description="Why the money goes back: `order_already_paid` (a second payment of a paid "
    "order), `paid_after_expired` / `paid_after_failed` / `paid_after_canceled` (money after "
    "its checkout closed), `amount_mismatch` / `currency_mismatch`, `operator` (an operator "
    "asked for it: `actor` and `note` say who and why), or `provider_dashboard` (made in the "
    "provider's dashboard, not by Store)."
)
RefundActor = Field(None, description="The operator who asked for it (reason `operator`).")
RefundNote = Field(None, description="The reason the operator gave (reason `operator`).")


@event("payments.refund.succeeded.v1")
class RefundSucceeded(Event):
    """A refund reached the shopper: the provider reports it `succeeded` (at once, or after it
    was pending). Published once per refund."""

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
            "created_at": "2027-03-01T12:00:00Z",
            "succeeded_at": "2027-03-01T12:00:02Z",
        }
    )

    refund_id: str
    attempt_id: str
    order_id: str
    amount: int = Field(ge=0, description="ISO 4217 minor units.")
    currency: str
    provider: str
    provider_refund_id: str | None = None
    reason: str = RefundReason
    created_at: datetime = Field(description="When Store decided the money goes back.")
    succeeded_at: datetime
    actor: str | None = RefundActor
    note: str | None = RefundNote


@event("payments.refund.failed.v1")
class RefundFailed(Event):
    """A refund will not happen by itself: the provider reports it `failed` or `canceled`, or it
    refused it, or every bounded retry failed. The money is still with the shop; an operator
    acts (docs/operations.md, "Failed refunds"). Published once per refund."""

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
            "status": "failed",
            "failure_reason": "expired_or_canceled_card",
            "created_at": "2027-03-01T12:00:00Z",
            "failed_at": "2027-03-04T09:30:00Z",
        }
    )

    refund_id: str
    attempt_id: str
    order_id: str
    amount: int = Field(ge=0, description="ISO 4217 minor units.")
    currency: str
    provider: str
    provider_refund_id: str | None = None
    reason: str = RefundReason
    status: Literal["failed", "canceled"]
    failure_reason: str | None = Field(
        None,
        description="The provider's reason (e.g. `expired_or_canceled_card`), "
        "`refused: …` when it refused the request, or `retries_exhausted: …`.",
    )
    created_at: datetime = Field(description="When Store decided the money goes back.")
    failed_at: datetime
    actor: str | None = RefundActor
    note: str | None = RefundNote


DisputeStatus = Literal[
    "warning_needs_response",
    "warning_under_review",
    "warning_closed",
    "needs_response",
    "under_review",
    "won",
    "lost",
    "prevented",
]

_DISPUTE_EXAMPLE: dict[str, Any] = {
    "dispute_id": "3a1f9c2e-7b4d-4e8a-9c1f-2e7b4d8a9c1f",
    "provider": "stripe",
    "provider_dispute_id": "du_3QxYz",
    "attempt_id": "8d2c1a30-9e4b-4f1e-a0b2-2b7f7c1e9a11",
    "order_id": "0b9e3c55-7a51-4c8e-8f3e-6c2d9b1e4a22",
    "amount": 2500,
    "currency": "EUR",
    "reason": "product_not_received",
    "status": "needs_response",
    "evidence_due_by": "2027-03-15T23:59:59Z",
    "opened_at": "2027-03-01T12:00:00Z",
}


class DisputeFacts(Event):
    """What every dispute event says about the dispute."""

    dispute_id: str
    provider: str
    provider_dispute_id: str
    attempt_id: str | None = Field(
        None, description="The attempt whose payment is disputed; None when Store cannot tell."
    )
    order_id: str | None = Field(None, description="Its order; None when Store cannot tell.")
    amount: int = Field(ge=0, description="Disputed amount, ISO 4217 minor units.")
    currency: str
    reason: str = Field(description="The card network's reason, e.g. `fraudulent`.")
    status: DisputeStatus
    evidence_due_by: datetime | None = Field(
        None, description="Evidence must reach the provider before this, or the dispute is lost."
    )
    opened_at: datetime


@event("payments.dispute.opened.v1")
class DisputeOpened(DisputeFacts):
    """A shopper's bank disputes a payment (a chargeback or an inquiry): the amount is held,
    and an operator answers with evidence before `evidence_due_by`. Published once."""

    model_config = _example(_DISPUTE_EXAMPLE)


@event("payments.dispute.closed.v1")
class DisputeClosed(DisputeFacts):
    """A dispute ended: `won` (the money stays), `lost` (it went back to the shopper, with the
    dispute fee), `warning_closed` (an inquiry that never became a chargeback) or `prevented`.
    Published once, after its `opened`."""

    model_config = _example(
        _DISPUTE_EXAMPLE | {"status": "lost", "closed_at": "2027-04-02T08:00:00Z"}
    )

    closed_at: datetime


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
    """A subscription bought with an order became active."""

    subscription_id: str
    order_id: str
    owner: Owner
    status: str
    current_period_end: datetime | None = None

    model_config = example(
        {
            "subscription_id": SUBSCRIPTION_ID,
            "order_id": ORDER_ID,
            "owner": {"kind": "organization", "id": "org_7"},
            "status": "active",
            "current_period_end": "2026-04-01T12:00:00Z",
        }
    )


@event("payments.subscription.renewed.v1")
class SubscriptionRenewed(Event):
    """A subscription was charged for a new period."""

    subscription_id: str
    order_id: str
    amount: int = Field(ge=0)
    currency: str
    current_period_end: datetime | None = None
    invoice_reference: str | None = None
    billing_reason: str | None = Field(
        None,
        description="Why the provider billed: `subscription_cycle` for a new period, "
        "`subscription_update` for a proration. Added within v1: null from older producers.",
    )
    renewed_at: datetime | None = Field(
        None,
        description="When the provider took the money. Added within v1: null from older "
        "producers (then the envelope's `occurred_at` is the best guess).",
    )

    model_config = example(
        {
            "subscription_id": SUBSCRIPTION_ID,
            "order_id": ORDER_ID,
            "amount": 900,
            "currency": "EUR",
            "current_period_end": "2026-05-01T12:00:00Z",
            "invoice_reference": "in_1Nv",
            "billing_reason": "subscription_cycle",
            "renewed_at": "2026-04-01T12:00:03Z",
        }
    )


@event("payments.subscription.canceled.v1")
class SubscriptionCanceled(Event):
    """A subscription was canceled, now or at the end of its period."""

    subscription_id: str
    order_id: str
    at_period_end: bool
    canceled_at: datetime | None = None

    model_config = example(
        {
            "subscription_id": SUBSCRIPTION_ID,
            "order_id": ORDER_ID,
            "at_period_end": True,
            "canceled_at": "2026-03-15T08:30:00Z",
        }
    )


@event("payments.subscription.past_due.v1")
class SubscriptionPastDue(Event):
    """Charging a subscription's invoice for a new period failed (`payment_failed`), or the
    bank wants the shopper to confirm it (`action_required`): the subscription is past due and
    the provider retries. `hosted_invoice_url` is where the shopper pays it or fixes the card.
    Published once per invoice and reason."""

    subscription_id: str
    order_id: str
    owner: Owner
    invoice_reference: str
    amount_due: int = Field(ge=0, description="ISO 4217 minor units.")
    currency: str
    reason: Literal["payment_failed", "action_required"]
    hosted_invoice_url: str | None = None
    next_payment_attempt: datetime | None = Field(
        None, description="When the provider tries again; None: it will not."
    )
    at: datetime

    model_config = example(
        {
            "subscription_id": SUBSCRIPTION_ID,
            "order_id": ORDER_ID,
            "owner": {"kind": "user", "id": "user_42"},
            "invoice_reference": "in_1Nv",
            "amount_due": 900,
            "currency": "EUR",
            "reason": "payment_failed",
            "hosted_invoice_url": "https://invoice.stripe.com/i/acct_1/test_YWNjdF8x",
            "next_payment_attempt": "2026-05-04T12:00:00Z",
            "at": "2026-05-01T12:00:00Z",
        }
    )


class CustomerFacts(Event):
    customer_id: str
    owner: Owner
    is_default: bool
    name: str
    email: str
    country: str


_CUSTOMER = {
    "customer_id": CUSTOMER_ID,
    "owner": {"kind": "user", "id": "user_42"},
    "is_default": True,
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "country": "DE",
}


@event("payments.customer.created.v1")
class CustomerCreated(CustomerFacts):
    """Billing information (a customer) was created."""

    model_config = example(_CUSTOMER)


@event("payments.customer.changed.v1")
class CustomerChanged(CustomerFacts):
    """A customer's billing information changed, it became the default, or it was deleted."""

    deleted: bool = False

    model_config = example({**_CUSTOMER, "deleted": False})
