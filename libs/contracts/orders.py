"""Order DTOs."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from libs.contracts.common import Owner
from libs.contracts.envelope import Contract, Input, example
from libs.contracts.events import CartLineSnapshot, DisputeStatus, Interval, OrderLineRef
from libs.contracts.payments import BillingDetails, ShippingAddress

_ADDRESS = {
    "name": "Ada Lovelace",
    "phone": None,
    "line1": "Unter den Linden 1",
    "line2": None,
    "city": "Berlin",
    "postal_code": "10117",
    "state": None,
    "country": "DE",
}

OrderRefundStatus = Literal["pending", "succeeded", "failed"]


class OrderRefundOut(Contract):
    """One refund of an order as payments reported it; `failed` once it will not happen
    (the provider's `failed` or `canceled`). A failed refund's money stays with the shop."""

    model_config = example(
        {
            "id": "5f0c7a7e-3f57-4a43-9d56-3c1f6a1f5d10",
            "amount": 2500,
            "status": "succeeded",
            "reason": "operator",
            "created_at": "2027-03-01T12:00:00Z",
        }
    )

    id: str = Field(description="The payments refund id.")
    amount: int = Field(ge=0, description="Minor units of the order's currency.")
    status: OrderRefundStatus
    reason: str
    created_at: datetime = Field(description="When Store decided the money goes back.")


class OrderDisputeOut(Contract):
    """A dispute of the order's payment as payments reported it: open while `closed_at` is
    null (answer with evidence before `evidence_due_by`); closed, it never reopens."""

    model_config = example(
        {
            "id": "3a1f9c2e-7b4d-4e8a-9c1f-2e7b4d8a9c1f",
            "amount": 2500,
            "currency": "EUR",
            "reason": "product_not_received",
            "status": "needs_response",
            "evidence_due_by": "2027-03-15T23:59:59Z",
            "opened_at": "2027-03-01T12:00:00Z",
            "closed_at": None,
        }
    )

    id: str = Field(description="The payments dispute id.")
    amount: int = Field(ge=0, description="Disputed amount, ISO 4217 minor units.")
    currency: str
    reason: str = Field(description="The card network's reason, e.g. `fraudulent`.")
    status: DisputeStatus
    evidence_due_by: datetime | None = None
    opened_at: datetime
    closed_at: datetime | None = Field(None, description="Set once the dispute ended.")


FulfillmentStatus = Literal["unfulfilled", "partially_fulfilled", "fulfilled"]


class OrderFulfillmentOut(Contract):
    """Goods of the order handed to a carrier, with the shopper's tracking."""

    model_config = example(
        {
            "id": "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "carrier": "DHL",
            "tracking_number": "00340434161234567890",
            "tracking_url": "https://www.dhl.de/de/privatkunden.html?piececode=00340434161234567890",
            "lines": [
                {"pricing_id": "pr_mug_eur", "product_key": "mug", "name": "Mug", "quantity": 2}
            ],
            "created_at": "2027-03-02T09:00:00Z",
        }
    )

    id: str
    carrier: str
    tracking_number: str
    tracking_url: str | None = None
    lines: list[OrderLineRef]
    created_at: datetime


class FulfillmentLineIn(Input):
    """How many of one of the order's lines (by its price) go in this shipment."""

    pricing_id: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=1_000_000)


class CreateFulfillmentIn(Input):
    """`POST /api/admin/orders/{id}/fulfillments`: a shipment of a paid order. Without
    `lines`, everything shippable not yet fulfilled goes."""

    model_config = Input.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "carrier": "DHL",
                    "tracking_number": "00340434161234567890",
                    "tracking_url": "https://www.dhl.de/de/privatkunden.html?piececode=1",
                    "lines": [{"pricing_id": "pr_mug_eur", "quantity": 1}],
                },
                {"carrier": "DHL", "tracking_number": "00340434161234567890"},
            ]
        }
    }

    carrier: str = Field(min_length=1, max_length=100)
    tracking_number: str = Field(min_length=1, max_length=100)
    tracking_url: str | None = Field(
        None, max_length=2000, description="An https:// link (it is sent to the shopper)."
    )
    lines: list[FulfillmentLineIn] | None = Field(None, min_length=1, max_length=500)

    @field_validator("carrier", "tracking_number")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip() or any(ord(c) < 32 for c in value):
            raise ValueError("must be printable text, not blank")
        return value.strip()

    @field_validator("tracking_url")
    @classmethod
    def _https_only(cls, value: str | None) -> str | None:
        # It ends up as a link in the shopper's e-mail: only an absolute https URL to a host,
        # never javascript:, data: or a relative path.
        if value is None:
            return None
        parts = urlsplit(value)
        if (
            parts.scheme != "https"
            or not parts.hostname
            or any(ord(c) <= 32 or c in "\\<>\"'" for c in value)
        ):
            raise ValueError("must be an https:// URL")
        return value


class FulfilOrderIn(CreateFulfillmentIn):
    """Internal: `POST /admin/orders/{id}/fulfillments` — the operator's shipment and who
    they are (the admin token's `sub`, for the event and the log)."""

    actor: str | None = Field(None, max_length=200)


class OrderRenewalOut(Contract):
    """What makes an order a subscription renewal: one paid period of a subscription, taken
    from its first order's recurring lines (docs/subscriptions.md)."""

    model_config = example(
        {
            "subscription_id": "2b7e1c4a-6d3f-4a8e-9b1c-4e6d3f8a9b1c",
            "first_order_id": "5f0c7a7e-3f57-4a43-9d56-3c1f6a1f5d10",
            "invoice_reference": "in_1Nv",
            "period_end": "2027-04-01T12:00:00Z",
            "billing_reason": "subscription_cycle",
            "amount_differs": False,
        }
    )

    subscription_id: str = Field(description="The payments subscription id.")
    first_order_id: str = Field(description="The order that started the subscription.")
    invoice_reference: str = Field(description="The provider's invoice: one order per invoice.")
    period_end: datetime | None = Field(None, description="Until when this renewal pays.")
    billing_reason: str | None = Field(
        None, description="The provider's: `subscription_cycle`, or `subscription_update`."
    )
    amount_differs: bool = Field(
        False,
        description="The provider charged other than the first order's recurring lines "
        "(a price change, a proration, a coupon): the total is what was charged.",
    )


OrderStatus = Literal["pending", "paid", "canceled"]


class OrderOut(Contract):
    id: str
    number: str
    currency: str
    total: int
    status: OrderStatus = Field(
        "pending", description="`pending` until paid; `canceled` (never paid) once canceled."
    )
    paid: datetime | None = None
    canceled_at: datetime | None = None
    created_at: datetime
    details: dict[str, Any] = Field(description="Immutable snapshot taken at purchase time.")
    owner: Owner
    customer_id: str | None = None
    backordered: bool = Field(
        False,
        description="Paid after its stock reservation was released, with too little stock "
        "left to cover it: it waits for stock (docs/stock.md).",
    )
    refunded_amount: int = Field(0, ge=0, description="Σ amounts of the succeeded refunds.")
    refunds: list[OrderRefundOut] = Field(default_factory=list, description="Oldest first.")
    disputes: list[OrderDisputeOut] = Field(default_factory=list, description="Oldest first.")
    fulfillment_status: FulfillmentStatus | None = Field(
        None, description="Of the shippable lines; null when nothing ships."
    )
    fulfillments: list[OrderFulfillmentOut] = Field(
        default_factory=list, description="Oldest first."
    )
    renewal: OrderRenewalOut | None = Field(
        None, description="Set on the order of a subscription's renewal; null otherwise."
    )


class ShippingChoice(Contract):
    """The shipping method chosen at checkout (its code) and the address it goes to."""

    method: str = Field(min_length=1, max_length=64)
    address: ShippingAddress

    model_config = example({"method": "standard", "address": _ADDRESS})


class PrepareOrderIn(Contract):
    """Internal: `POST /orders` — idempotent by `order_id` and by `cart_id`."""

    order_id: str
    cart_id: str
    owner: Owner
    customer_id: str
    billing: BillingDetails
    locale: str = "en"
    currency: str
    lines: list[CartLineSnapshot] = Field(min_length=1)
    shipping: ShippingChoice | None = Field(
        None, description="Required when a line is shippable, refused when none is."
    )


OrderPaidFilter = Literal["paid", "unpaid"]


class CancelOrderIn(Contract):
    """Internal: why an order is canceled, and by whom (`actor`: an operator's `sub`)."""

    reason: str | None = Field(None, max_length=500)
    actor: str | None = Field(None, max_length=200)


class OrderLineDetails(Contract):
    """One line of an order as it was bought: catalog facts and taxed amounts, frozen."""

    pricing_id: str
    product_key: str
    name: str = Field(description="In the shopper's locale at purchase time.")
    checkout_description: str | None = None
    unit_amount: int = Field(ge=0)
    quantity: int = Field(ge=1)
    interval: Interval | None = None
    interval_count: int = 1
    subtotal: int = Field(ge=0, description="unit_amount * quantity (gross for inclusive tax).")
    taxable_amount: int = Field(ge=0, description="The net amount the tax was computed on.")
    tax: int = Field(ge=0)
    total: int = Field(ge=0, description="What the line costs: subtotal, plus exclusive tax.")
    tax_rate_id: str | None = None
    tax_code: str | None = None
    shippable: bool = Field(False, description="A physical good to ship.")


class OrderTaxLine(Contract):
    """The tax of all lines sharing one rate, as printed on an invoice."""

    rate_id: str
    display_name: str
    percentage: Decimal = Field(description='Exact, e.g. "19" or "7.7" (a JSON string).')
    inclusive: bool
    taxable_amount: int = Field(ge=0)
    amount: int = Field(ge=0)


class OrderShippingMethod(Contract):
    code: str
    name: str = Field(description="In the shopper's locale at purchase time.")
    delivery_days_min: int | None = None
    delivery_days_max: int | None = None

    model_config = example(
        {
            "code": "standard",
            "name": "Standardversand",
            "delivery_days_min": 2,
            "delivery_days_max": 5,
        }
    )


class OrderShipping(Contract):
    """How an order is shipped, as bought: the method, the address, the amount and its tax.

    Taxed like a line with the destination's rate for the method's tax code: `amount` is what
    the method costs (gross for an inclusive rate, 0 when the order qualified for free
    shipping), `total` = amount + exclusive tax.
    """

    method: OrderShippingMethod
    address: ShippingAddress
    amount: int = Field(ge=0)
    taxable_amount: int = Field(ge=0, description="The net amount the tax was computed on.")
    tax: int = Field(ge=0)
    total: int = Field(ge=0)
    tax_rate_id: str | None = None
    tax_code: str | None = None
    free: bool = Field(False, description="The method's free-over amount was reached.")

    model_config = example(
        {
            "method": {"code": "standard", "name": "Standardversand"},
            "address": _ADDRESS,
            "amount": 490,
            "taxable_amount": 412,
            "tax": 78,
            "total": 490,
            "tax_rate_id": "rate-de-19",
            "tax_code": "shipping",
            "free": False,
        }
    )


class OrderDetails(Contract):
    """`OrderOut.details`: the immutable snapshot of an order taken at purchase time.

    Sums are exact: total = Σ line totals + shipping total, tax = Σ line taxes + shipping
    tax = Σ tax line amounts, subtotal = Σ line subtotals (goods only); all amounts are minor
    units of `currency`.
    """

    version: int = 1
    cart_id: str
    customer_id: str | None = None
    locale: str
    currency: str
    lines: list[OrderLineDetails]
    tax_lines: list[OrderTaxLine] = Field(default_factory=list)
    subtotal: int = Field(ge=0)
    tax: int = Field(ge=0)
    total: int = Field(ge=0)
    billing: BillingDetails
    shipping: OrderShipping | None = Field(None, description="Null when nothing is shipped.")
    statement_descriptor: str | None = Field(
        None, description="Of the first line's product; shown on the shopper's bank statement."
    )

    model_config = Contract.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "version": 1,
                    "cart_id": "5f0c2a4e-0000-4000-8000-000000000001",
                    "customer_id": "c41d9b7a-0000-4000-8000-000000000002",
                    "locale": "de",
                    "currency": "EUR",
                    "lines": [
                        {
                            "pricing_id": "9b2f6c1d-0000-4000-8000-000000000003",
                            "product_key": "mug",
                            "name": "Tasse",
                            "unit_amount": 1999,
                            "quantity": 2,
                            "interval": None,
                            "interval_count": 1,
                            "subtotal": 3998,
                            "taxable_amount": 3998,
                            "tax": 760,
                            "total": 4758,
                            "tax_rate_id": "rate-de-19",
                            "tax_code": None,
                        }
                    ],
                    "tax_lines": [
                        {
                            "rate_id": "rate-de-19",
                            "display_name": "MwSt. 19 %",
                            "percentage": "19",
                            "inclusive": False,
                            "taxable_amount": 3998,
                            "amount": 760,
                        }
                    ],
                    "subtotal": 3998,
                    "tax": 760,
                    "total": 4758,
                    "billing": {
                        "name": "Ada Lovelace",
                        "email": "ada@example.com",
                        "address": {
                            "line1": "Unter den Linden 1",
                            "city": "Berlin",
                            "postal_code": "10117",
                            "country": "DE",
                        },
                    },
                    "statement_descriptor": "STORE MUG",
                }
            ]
        }
    }
