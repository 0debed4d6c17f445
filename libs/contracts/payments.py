"""Payments DTOs: billing details, customers, payment attempts, subscriptions."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import EmailStr, Field

from libs.contracts.common import Owner
from libs.contracts.envelope import Contract
from libs.contracts.events import Interval

AttemptStatus = Literal["unpaid", "paid", "failed", "expired", "canceled"]


class Address(Contract):
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    state: str | None = Field(None, max_length=100)
    country: str = Field(description="ISO 3166-1 alpha-2.", min_length=2, max_length=2)


class BillingDetails(Contract):
    name: str = Field(min_length=1, max_length=200)
    email: EmailStr
    address: Address
    vat_id: str | None = Field(None, max_length=20)


class CreateBillingIn(BillingDetails):
    """`POST /api/payments/billing`; `organization_id` makes it the organization's."""

    organization_id: str | None = None


class CustomerOut(Contract):
    id: str
    is_default: bool
    name: str
    email: str
    address: Address
    vat_id: str | None = None
    organization_id: str | None = None
    owner: Owner


class PaymentLine(Contract):
    pricing_id: str
    name: str
    unit_amount: int = Field(ge=0)
    quantity: int = Field(ge=1)
    interval: Interval | None = None
    interval_count: int = Field(1, ge=1)
    total: int | None = Field(
        None,
        ge=0,
        description="What the line charges, exclusive taxes included; default "
        "unit_amount * quantity. Give it when it differs (exclusive tax): the provider then "
        "charges the line as one item of this amount, every period for recurring lines.",
    )


class StartPaymentIn(Contract):
    """Internal: `POST /payments` — a new attempt, or the order's open one when retried."""

    order_id: str
    order_number: str
    owner: Owner
    customer_id: str
    amount: int = Field(ge=0)
    currency: str
    lines: list[PaymentLine] = Field(min_length=1)
    statement_descriptor: str | None = None
    success_url: str
    cancel_url: str
    new_attempt: bool = Field(False, description="True for pay_for_order: never reuse.")


class PaymentOut(Contract):
    attempt_id: str
    status: AttemptStatus
    checkout_url: str | None = None


class PaymentAttemptOut(PaymentOut):
    """Internal: `GET /payments/{attempt_id}` and `GET /orders/{order_id}/payments`."""

    order_id: str
    order_number: str
    provider: str
    mode: Literal["payment", "subscription"]
    total: int
    currency: str
    refund_required: bool = Field(
        False, description="Money arrived for an order that another attempt already paid."
    )
    refund_reason: str | None = None
    failure_reason: str | None = None
    created_at: datetime
    paid_at: datetime | None = None


class WebhookAck(Contract):
    """The answer to a provider's webhook: received, and whether it was a repeat."""

    received: bool = True
    event_id: str
    duplicate: bool = False


class SubscriptionOut(Contract):
    id: str
    status: str
    order_id: str
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    created_at: datetime
    owner: Owner | None = None
    customer_id: str | None = None
    interval: Interval | None = None
    interval_count: int | None = None
    amount: int | None = Field(None, description="What each renewal charges, in minor units.")
    currency: str | None = None
    canceled_at: datetime | None = Field(None, description="When cancellation was requested.")
    ended_at: datetime | None = None
    renewals: int = Field(0, description="How many renewals were paid.")
