"""Public DTOs of the gateway's store API that are not a single service's shape."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, model_validator

from libs.contracts.common import ID_PATTERN
from libs.contracts.envelope import Contract, Input
from libs.contracts.orders import OrderOut
from libs.contracts.payments import (
    AttemptStatus,
    BillingDetails,
    PaymentAttemptOut,
    PaymentOut,
    RefundStatus,
    ShippingAddress,
)


class CheckoutShippingIn(Input):
    """How a cart with a shippable line is shipped: a method's code and, unless it is the
    billing address (with the billing name), the address."""

    method: str = Field(min_length=1, max_length=64, description="A shipping method's `code`.")
    address: ShippingAddress | None = Field(
        None, description="Default: the billing address, to the billing name."
    )

    model_config = Input.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "method": "express",
                    "address": {
                        "name": "Ada Lovelace",
                        "phone": "+49 30 1234567",
                        "line1": "Unter den Linden 1",
                        "city": "Berlin",
                        "postal_code": "10117",
                        "country": "DE",
                    },
                },
                {"method": "standard"},
            ]
        }
    }


class CheckoutIn(Input):
    """`POST /api/store/checkout`: a customer id, or billing details, or neither (the default);
    `shipping` when the cart requires it."""

    customer_id: str | None = Field(None, max_length=64, pattern=ID_PATTERN)
    billing: BillingDetails | None = None
    success_url: str = Field(min_length=1, max_length=2000)
    cancel_url: str = Field(min_length=1, max_length=2000)
    shipping: CheckoutShippingIn | None = None

    @model_validator(mode="after")
    def _one_source(self) -> CheckoutIn:
        if self.customer_id and self.billing:
            raise ValueError("give either customer_id or billing, not both")
        return self


class PayIn(Input):
    """`POST /api/store/orders/{order_id}/pay`."""

    success_url: str = Field(min_length=1, max_length=2000)
    cancel_url: str = Field(min_length=1, max_length=2000)


class CheckoutOut(Contract):
    order: OrderOut
    payment: PaymentOut


class OrderPaymentOut(Contract):
    """The order's payment attempt that tells where its payment stands."""

    attempt_id: str
    status: AttemptStatus = Field(
        description="`processing`: a delayed payment (SEPA Debit, bank transfer) is on its "
        "way; the order cannot be paid again until it succeeds or fails."
    )


class StoreOrderOut(OrderOut):
    """`GET /api/store/orders/{id}`: the order with its payment attempt (none before one)."""

    payment: OrderPaymentOut | None = None

    model_config = Contract.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                    "number": "2027-000042",
                    "currency": "EUR",
                    "total": 2500,
                    "paid": None,
                    "created_at": "2027-01-05T10:00:00Z",
                    "details": {},
                    "owner": {"kind": "user", "id": "ada"},
                    "customer_id": "3d6f0a9e-1c2b-4f5e-8a7d-9b0c1d2e3f40",
                    "payment": {
                        "attempt_id": "5c4b3a29-1807-4f6e-9d5c-4b3a29180706",
                        "status": "processing",
                    },
                }
            ]
        }
    }


class AdminRefundLineIn(Input):
    """Units of one line of the order to refund."""

    pricing_id: str = Field(min_length=1, max_length=255, description="The line's pricing_id.")
    quantity: int = Field(ge=1, le=1_000_000)

    model_config = Contract.model_config | {
        "json_schema_extra": {"examples": [{"pricing_id": "price-mug-eur", "quantity": 1}]}
    }


class AdminRefundIn(Input):
    """`POST /api/admin/orders/{order_id}/refunds`: an `amount` in minor units, or `lines`
    (priced from the order's frozen line totals, tax included), or neither: all that is left."""

    amount: int | None = Field(None, ge=1, description="Minor units of the order's currency.")
    reason: str = Field(min_length=1, max_length=500, description="Why, for the records.")
    lines: list[AdminRefundLineIn] | None = Field(None, min_length=1, max_length=200)

    model_config = Contract.model_config | {
        "json_schema_extra": {
            "examples": [{"amount": 1000, "reason": "Arrived late", "lines": None}]
        }
    }

    @model_validator(mode="after")
    def _amount_or_lines(self) -> AdminRefundIn:
        if self.amount is not None and self.lines:
            raise ValueError("give either amount or lines, not both")
        return self


class AdminRefundOut(Contract):
    """An operator's refund: `pending` until the provider settles it, then `succeeded`, or
    `failed` / `canceled` (the money is still with the shop)."""

    id: str
    amount: int = Field(description="Minor units of the order's currency.")
    currency: str
    status: RefundStatus
    reason: str = Field(description="`operator`.")
    note: str | None = Field(None, description="The reason the operator gave.")
    actor: str | None = Field(None, description="The operator who asked for it.")
    created_at: datetime

    model_config = Contract.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "id": "5f0c7a7e-3f57-4a43-9d56-3c1f6a1f5d10",
                    "amount": 1000,
                    "currency": "EUR",
                    "status": "succeeded",
                    "reason": "operator",
                    "note": "Arrived late",
                    "actor": "operator-1",
                    "created_at": "2027-03-01T12:00:00Z",
                }
            ]
        }
    }


class AdminOrderOut(OrderOut):
    """`GET /api/admin/orders/{id}`: any order with its refunds, disputes and fulfilments, and
    every attempt to pay it (oldest first)."""

    payments: list[PaymentAttemptOut] = Field(default_factory=list)

    model_config = Contract.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                    "number": "2027-000042",
                    "currency": "EUR",
                    "total": 2500,
                    "paid": "2027-01-05T10:02:00Z",
                    "created_at": "2027-01-05T10:00:00Z",
                    "details": {},
                    "owner": {"kind": "user", "id": "ada"},
                    "customer_id": "3d6f0a9e-1c2b-4f5e-8a7d-9b0c1d2e3f40",
                    "fulfillment_status": "unfulfilled",
                    "payments": [],
                }
            ]
        }
    }
