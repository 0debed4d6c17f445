"""Builders of orders and events for the notifications tests: random ids, sensible defaults."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from libs.contracts.common import Owner
from libs.contracts.events import (
    OrderCreated,
    OrderFulfilled,
    OrderLineRef,
    OrderPaid,
    PaymentFailed,
    RefundSucceeded,
    SubscriptionPastDue,
    SubscriptionRenewed,
)
from libs.contracts.orders import OrderOut
from libs.runtime.problems import NotFound

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def user() -> Owner:
    return Owner(kind="user", id=f"user_{uuid.uuid4().hex[:8]}")


def order_out(
    *,
    locale: str = "en",
    currency: str = "EUR",
    lines: list[tuple[str, int, int]] | None = None,
    shipping: int | None = 490,
    tax_rate: tuple[str, int, bool] | None = ("VAT 19 %", 19, False),
    owner: Owner | None = None,
    email: str = "ada@example.com",
    name: str = "Ada Lovelace",
    paid: datetime | None = NOW,
) -> OrderOut:
    """An order view as the orders service answers it: `lines` are (name, unit, quantity)."""
    lines = lines if lines is not None else [("Mug", 1999, 2)]
    detail_lines = []
    tax_total = 0
    for pos, (line_name, unit, quantity) in enumerate(lines):
        subtotal = unit * quantity
        tax = 0 if tax_rate is None else subtotal * tax_rate[1] // 100
        tax_total += tax
        detail_lines.append(
            {
                "pricing_id": f"pr_{pos}",
                "product_key": f"p{pos}",
                "name": line_name,
                "unit_amount": unit,
                "quantity": quantity,
                "subtotal": subtotal,
                "taxable_amount": subtotal,
                "tax": tax,
                "total": subtotal + tax,
            }
        )
    subtotal = sum(line["subtotal"] for line in detail_lines)
    details: dict[str, Any] = {
        "cart_id": new_id(),
        "locale": locale,
        "currency": currency,
        "lines": detail_lines,
        "tax_lines": []
        if tax_rate is None
        else [
            {
                "rate_id": "rate",
                "display_name": tax_rate[0],
                "percentage": str(tax_rate[1]),
                "inclusive": tax_rate[2],
                "taxable_amount": subtotal,
                "amount": tax_total,
            }
        ],
        "subtotal": subtotal,
        "tax": tax_total,
        "total": subtotal + tax_total + (shipping or 0),
        "billing": {
            "name": name,
            "email": email,
            "address": {
                "line1": "Unter den Linden 1",
                "city": "Berlin",
                "postal_code": "10117",
                "country": "DE",
            },
        },
    }
    if shipping is not None:
        details["shipping"] = {
            "method": {"code": "standard", "name": "Standard"},
            "address": {
                "name": name,
                "line1": "Unter den Linden 1",
                "city": "Berlin",
                "postal_code": "10117",
                "country": "DE",
            },
            "amount": shipping,
            "taxable_amount": shipping,
            "tax": 0,
            "total": shipping,
        }
    return OrderOut(
        id=new_id(),
        number=f"2026-{uuid.uuid4().int % 1_000_000:06d}",
        currency=currency,
        total=details["total"],
        paid=paid,
        created_at=NOW,
        details=details,
        owner=owner or user(),
    )


def created(order: OrderOut) -> OrderCreated:
    return OrderCreated(
        order_id=order.id,
        number=order.number,
        owner=order.owner,
        currency=order.currency,
        total=order.total,
    )


def paid(order: OrderOut) -> OrderPaid:
    return OrderPaid(
        order_id=order.id,
        number=order.number,
        owner=order.owner,
        currency=order.currency,
        total=order.total,
        paid_at=NOW,
    )


def fulfilled(order: OrderOut, *, partial: bool = False) -> OrderFulfilled:
    return OrderFulfilled(
        order_id=order.id,
        number=order.number,
        owner=order.owner,
        fulfillment_id=new_id(),
        carrier="DHL",
        tracking_number="00340434161234567890",
        tracking_url="https://track.example/?id=00340434161234567890&x=<y>",
        lines=[OrderLineRef(pricing_id="pr_0", product_key="p0", name="Mug", quantity=2)],
        fulfillment_status="partially_fulfilled" if partial else "fulfilled",
        created_at=NOW,
    )


def refunded(order: OrderOut, amount: int) -> RefundSucceeded:
    return RefundSucceeded(
        refund_id=new_id(),
        attempt_id=new_id(),
        order_id=order.id,
        amount=amount,
        currency=order.currency,
        provider="dev",
        reason="operator",
        created_at=NOW,
        succeeded_at=NOW,
    )


def payment_failed(order: OrderOut) -> PaymentFailed:
    return PaymentFailed(attempt_id=new_id(), order_id=order.id, reason="card_declined")


def renewed(order: OrderOut, amount: int) -> SubscriptionRenewed:
    return SubscriptionRenewed(
        subscription_id=new_id(),
        order_id=order.id,
        amount=amount,
        currency=order.currency,
        current_period_end=datetime(2026, 5, 1, tzinfo=UTC),
    )


def past_due(order: OrderOut, amount: int) -> SubscriptionPastDue:
    return SubscriptionPastDue(
        subscription_id=new_id(),
        order_id=order.id,
        owner=order.owner,
        invoice_reference="in_1",
        amount_due=amount,
        currency=order.currency,
        reason="payment_failed",
        hosted_invoice_url="https://invoice.example/i/1",
        next_payment_attempt=datetime(2026, 5, 4, tzinfo=UTC),
        at=NOW,
    )


@dataclass
class FakeOrders:
    """The orders service's order view, for the orders it was given."""

    orders: dict[str, OrderOut] = field(default_factory=dict)

    def add(self, order: OrderOut) -> OrderOut:
        self.orders[order.id] = order
        return order

    async def get_order(self, *, owner: Owner, order_id: str) -> OrderOut:
        order = self.orders.get(order_id)
        if order is None or order.owner != owner:
            raise NotFound(f"No order {order_id}.")
        return order


@dataclass
class RecordingMailer:
    """Keeps every message it accepts; refuses while `down` is more than zero (counts down)."""

    sent: list[EmailMessage] = field(default_factory=list)
    down: int = 0

    async def send(self, message: EmailMessage) -> None:
        if self.down > 0:
            self.down -= 1
            raise ConnectionRefusedError("the SMTP server is down")
        self.sent.append(message)

    async def aclose(self) -> None:
        return None
