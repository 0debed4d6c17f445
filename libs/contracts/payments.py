"""Payments DTOs: billing details, customers, payment attempts, subscriptions."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import EmailStr, Field, model_validator

from libs.contracts.common import Owner
from libs.contracts.envelope import Contract, Input
from libs.contracts.events import Interval

RefundStatus = Literal["pending", "succeeded", "failed", "canceled"]
# `processing`: the checkout completed and a delayed payment (SEPA Debit, bank transfer) is on
# its way; it becomes `paid` or `failed`, and meanwhile the order cannot be paid again.
AttemptStatus = Literal["unpaid", "processing", "paid", "failed", "expired", "canceled"]


class Address(Input):
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    state: str | None = Field(None, max_length=100)
    country: str = Field(description="ISO 3166-1 alpha-2.", min_length=2, max_length=2)

    model_config = Contract.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "line1": "Hauptstraße 1",
                    "line2": None,
                    "city": "Berlin",
                    "postal_code": "10115",
                    "state": None,
                    "country": "DE",
                }
            ]
        }
    }


class ShippingAddress(Address):
    """Where an order goes: the address fields, plus who receives it and a phone for the
    carrier."""

    name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(None, max_length=40)

    model_config = Contract.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "name": "Ada Lovelace",
                    "phone": "+49 30 1234567",
                    "line1": "Hauptstraße 1",
                    "line2": None,
                    "city": "Berlin",
                    "postal_code": "10115",
                    "state": None,
                    "country": "DE",
                }
            ]
        }
    }


class BillingDetails(Input):
    name: str = Field(min_length=1, max_length=200)
    email: EmailStr
    address: Address
    vat_id: str | None = Field(None, max_length=20)

    model_config = Contract.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "name": "Ada Lovelace",
                    "email": "ada@example.com",
                    "address": {
                        "line1": "Hauptstraße 1",
                        "line2": None,
                        "city": "Berlin",
                        "postal_code": "10115",
                        "state": None,
                        "country": "DE",
                    },
                    "vat_id": "DE123456789",
                }
            ]
        }
    }


class CreateBillingIn(BillingDetails):
    """`POST /api/payments/billing`; `organization_id` makes it the organization's."""

    organization_id: str | None = None

    model_config = Contract.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "name": "Acme GmbH",
                    "email": "billing@acme.example",
                    "address": {
                        "line1": "Hauptstraße 1",
                        "line2": None,
                        "city": "Berlin",
                        "postal_code": "10115",
                        "state": None,
                        "country": "DE",
                    },
                    "vat_id": None,
                    "organization_id": "acme",
                }
            ]
        }
    }


class CustomerOut(Contract):
    id: str
    is_default: bool
    name: str
    email: str
    address: Address
    vat_id: str | None = None
    organization_id: str | None = None
    owner: Owner

    model_config = Contract.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "id": "3d6f0a9e-1c2b-4f5e-8a7d-9b0c1d2e3f40",
                    "is_default": True,
                    "name": "Ada Lovelace",
                    "email": "ada@example.com",
                    "address": {
                        "line1": "Hauptstraße 1",
                        "line2": None,
                        "city": "Berlin",
                        "postal_code": "10115",
                        "state": None,
                        "country": "DE",
                    },
                    "vat_id": "DE123456789",
                    "organization_id": None,
                    "owner": {"kind": "user", "id": "ada"},
                }
            ]
        }
    }


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

    model_config = Contract.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "pricing_id": "price-mug-eur",
                    "name": "Mug",
                    "unit_amount": 1290,
                    "quantity": 2,
                    "interval": None,
                    "interval_count": 1,
                    "total": 2580,
                }
            ]
        }
    }


class PaymentCheckIn(Contract):
    """Internal: `POST /payments/check` — can the active provider charge these lines? 204, or
    the 422 `POST /payments` would answer for them; nothing is written."""

    amount: int = Field(ge=0)
    currency: str
    lines: list[PaymentLine] = Field(min_length=1)

    model_config = Contract.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "amount": 2580,
                    "currency": "EUR",
                    "lines": [
                        {
                            "pricing_id": "price-mug-eur",
                            "name": "Mug",
                            "unit_amount": 1290,
                            "quantity": 2,
                            "interval": None,
                            "interval_count": 1,
                            "total": None,
                        }
                    ],
                }
            ]
        }
    }


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
    shipping: ShippingAddress | None = Field(
        None, description="The order's shipping address: the payment's shipping details."
    )

    model_config = Contract.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "order_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                    "order_number": "2027-000042",
                    "owner": {"kind": "anonymous", "id": "anon-7f3a"},
                    "customer_id": "3d6f0a9e-1c2b-4f5e-8a7d-9b0c1d2e3f40",
                    "amount": 2580,
                    "currency": "EUR",
                    "lines": [
                        {
                            "pricing_id": "price-mug-eur",
                            "name": "Mug",
                            "unit_amount": 1290,
                            "quantity": 2,
                            "interval": None,
                            "interval_count": 1,
                            "total": 2580,
                        }
                    ],
                    "statement_descriptor": "Store Mugs",
                    "success_url": "https://shop.example/thanks",
                    "cancel_url": "https://shop.example/cart",
                    "new_attempt": False,
                }
            ]
        }
    }


class PaymentOut(Contract):
    attempt_id: str
    status: AttemptStatus
    checkout_url: str | None = None

    model_config = Contract.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "attempt_id": "5c4b3a29-1807-4f6e-9d5c-4b3a29180706",
                    "status": "unpaid",
                    "checkout_url": "http://127.0.0.1:8000/api/payments/dev-checkout/5c4b3a29-1807-4f6e-9d5c-4b3a29180706",
                }
            ]
        }
    }


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

    model_config = Contract.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "attempt_id": "5c4b3a29-1807-4f6e-9d5c-4b3a29180706",
                    "status": "unpaid",
                    "checkout_url": "http://127.0.0.1:8000/api/payments/dev-checkout/5c4b3a29-1807-4f6e-9d5c-4b3a29180706",
                    "order_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                    "order_number": "2027-000042",
                    "provider": "dev",
                    "mode": "payment",
                    "total": 2580,
                    "currency": "EUR",
                    "refund_required": False,
                    "refund_reason": None,
                    "failure_reason": None,
                    "created_at": "2027-03-01T12:00:00Z",
                    "paid_at": None,
                }
            ]
        }
    }


class PortalIn(Input):
    """`POST /api/store/subscriptions/{id}/portal` (and payments' own route)."""

    return_url: str | None = Field(
        None,
        min_length=1,
        max_length=2000,
        description="Where the billing portal sends the shopper back; the shop when left out "
        "(an absolute http(s) URL on an allowed host, like a checkout's return URLs).",
    )

    model_config = Input.model_config | {
        "json_schema_extra": {"examples": [{"return_url": "https://shop.example/account"}]}
    }


class PortalOut(Contract):
    """A link to the provider's billing portal for one subscription: change the card, pay a
    past-due invoice, cancel. Short-lived: ask for a new one each time."""

    url: str

    model_config = Contract.model_config | {
        "json_schema_extra": {"examples": [{"url": "https://billing.stripe.com/p/session/test_1"}]}
    }


class DisputeOut(Contract):
    """Internal: a disputed payment (`GET /disputes`), newest first."""

    id: str
    provider: str
    provider_dispute_id: str
    attempt_id: str | None = None
    order_id: str | None = None
    amount: int
    currency: str
    reason: str
    status: str = Field(description="The provider's status, e.g. `needs_response` or `lost`.")
    evidence_due_by: datetime | None = None
    opened_at: datetime
    closed_at: datetime | None = None

    model_config = Contract.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "id": "3a1f9c2e-7b4d-4e8a-9c1f-2e7b4d8a9c1f",
                    "provider": "stripe",
                    "provider_dispute_id": "du_3QxYz",
                    "attempt_id": "8d2c1a30-9e4b-4f1e-a0b2-2b7f7c1e9a11",
                    "order_id": "0b9e3c55-7a51-4c8e-8f3e-6c2d9b1e4a22",
                    "amount": 2500,
                    "currency": "EUR",
                    "reason": "fraudulent",
                    "status": "needs_response",
                    "evidence_due_by": "2027-03-22T12:00:00Z",
                    "opened_at": "2027-03-01T12:00:00Z",
                    "closed_at": None,
                }
            ]
        }
    }


class RefundLineIn(Input):
    """Units of one order line to refund."""

    pricing_id: str = Field(min_length=1, max_length=255)
    quantity: int = Field(ge=1, le=1_000_000)

    model_config = Contract.model_config | {
        "json_schema_extra": {"examples": [{"pricing_id": "price-mug-eur", "quantity": 1}]}
    }


class RefundOut(Contract):
    """Internal: a refund of money that must not stay (`GET /refunds`, `store payments refunds`)."""

    id: str
    attempt_id: str
    order_id: str
    provider: str
    amount: int
    currency: str
    reason: str
    status: RefundStatus = Field(
        description="`pending` until the provider settles it (not yet accepted while "
        "`provider_refund_id` is null), then `succeeded`, `failed` or `canceled` for good."
    )
    provider_refund_id: str | None = None
    last_error: str | None = None
    failure_reason: str | None = Field(
        None,
        description="Why it failed: the provider's reason, `refused: …` or `retries_exhausted: …`.",
    )
    tries: int = Field(0, description="Calls to the provider that did not settle it.")
    next_try_at: datetime | None = Field(
        None, description="When reconciliation next sends it, or asks how it went."
    )
    created_at: datetime
    updated_at: datetime
    actor: str | None = Field(None, description="The operator who asked for it (`operator`).")
    note: str | None = Field(None, description="The reason the operator gave (`operator`).")
    lines: list[RefundLineIn] | None = Field(None, description="The lines it refunds, if any.")

    model_config = Contract.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "id": "1f2e3d4c-5b6a-4978-8a6b-5c4d3e2f1a0b",
                    "attempt_id": "5c4b3a29-1807-4f6e-9d5c-4b3a29180706",
                    "order_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                    "provider": "stripe",
                    "amount": 2500,
                    "currency": "EUR",
                    "reason": "order_already_paid",
                    "status": "succeeded",
                    "provider_refund_id": "re_3QxYz",
                    "last_error": None,
                    "failure_reason": None,
                    "tries": 0,
                    "next_try_at": None,
                    "created_at": "2027-03-01T12:00:00Z",
                    "updated_at": "2027-03-01T12:00:01Z",
                }
            ]
        }
    }


class OperatorRefundIn(Input):
    """Internal: `POST /admin/orders/{order_id}/refunds` — an operator sends money back.

    Give an `amount` (minor units), or `lines` (priced from the order's frozen line totals, tax
    included; ADR 007, "Operators refund orders"), or neither: all that is not yet refunded.
    Once per order and `idempotency_key`: a retry returns the same refund, another request under
    the same key is 422 `idempotency_key_reused`."""

    amount: int | None = Field(None, ge=1)
    reason: str = Field(min_length=1, max_length=500)
    lines: list[RefundLineIn] | None = Field(None, min_length=1, max_length=200)
    idempotency_key: str = Field(min_length=1, max_length=255)
    actor: str = Field(min_length=1, max_length=200)

    model_config = Contract.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "amount": None,
                    "reason": "The mug arrived broken",
                    "lines": [{"pricing_id": "price-mug-eur", "quantity": 1}],
                    "idempotency_key": "7d1f0c8e-2b3a-4c5d-9e8f-0a1b2c3d4e5f",
                    "actor": "operator-1",
                }
            ]
        }
    }

    @model_validator(mode="after")
    def _amount_or_lines(self) -> OperatorRefundIn:
        if self.amount is not None and self.lines:
            raise ValueError("give either amount or lines, not both")
        return self


class ReconcileOut(Contract):
    """Internal: what one reconciliation run did (`POST /reconcile`, `store payments reconcile`)."""

    checked: int = 0
    settled: int = 0
    refunds_retried: int = 0
    errors: int = 0
    subscriptions_checked: int = Field(
        0, description="Running subscriptions whose paid invoices the provider was asked for."
    )
    renewals_recorded: int = Field(
        0, description="Paid renewal invoices no webhook had brought, recorded now."
    )

    model_config = Contract.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "checked": 3,
                    "settled": 1,
                    "refunds_retried": 0,
                    "errors": 0,
                    "subscriptions_checked": 2,
                    "renewals_recorded": 1,
                }
            ]
        }
    }


class WebhookAck(Contract):
    """The answer to a provider's webhook: received, and whether it was a repeat."""

    received: bool = True
    event_id: str
    duplicate: bool = False

    model_config = Contract.model_config | {
        "json_schema_extra": {
            "examples": [{"received": True, "event_id": "evt_1Q2w3E4r5T6y7U8i", "duplicate": False}]
        }
    }


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

    model_config = Contract.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "id": "7e6d5c4b-3a29-4180-9f6e-5d4c3b2a1908",
                    "status": "active",
                    "order_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                    "current_period_end": "2027-04-01T12:00:00Z",
                    "cancel_at_period_end": False,
                    "created_at": "2027-03-01T12:00:00Z",
                    "owner": {"kind": "user", "id": "ada"},
                    "customer_id": "3d6f0a9e-1c2b-4f5e-8a7d-9b0c1d2e3f40",
                    "interval": "month",
                    "interval_count": 1,
                    "amount": 990,
                    "currency": "EUR",
                    "canceled_at": None,
                    "ended_at": None,
                    "renewals": 0,
                }
            ]
        }
    }
