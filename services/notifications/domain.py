"""What each message says, decided from an event and the order it is about: pure, no I/O.

Every amount arrives in minor units and leaves formatted for the shopper's locale with the
currency's ISO 4217 exponent (JPY 0 decimals, EUR 2, BHD 3); the templates only place it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from babel.dates import format_date

from libs.contracts.events import (
    OrderFulfilled,
    OrderPaid,
    PaymentFailed,
    RefundSucceeded,
    SubscriptionPastDue,
    SubscriptionRenewed,
)
from libs.contracts.money import format_money
from libs.contracts.orders import OrderDetails, OrderOut

Kind = Literal[
    "order_paid",
    "order_shipped",
    "refund_issued",
    "payment_failed",
    "renewal_paid",
    "renewal_failed",
]
KINDS: tuple[Kind, ...] = (
    "order_paid",
    "order_shipped",
    "refund_issued",
    "payment_failed",
    "renewal_paid",
    "renewal_failed",
)
LOCALES = ("en", "de", "fr")
DEFAULT_LOCALE = "en"


class OrderUnknown(LookupError):
    """The order an event is about is not known here yet (its created event is on the way)."""


@dataclass(frozen=True)
class Notice:
    """One message to send: why (event and kind), to whom, in which language, saying what."""

    event_id: str
    kind: Kind
    order_id: str
    recipient: str
    name: str | None
    locale: str
    facts: Mapping[str, Any] = field(default_factory=dict)


def pick_locale(value: str | None) -> str:
    """The supported language of an order's locale (`de-AT` is `de`), else English."""
    language = (value or "").replace("_", "-").split("-")[0].lower()
    return language if language in LOCALES else DEFAULT_LOCALE


def money(amount: int, currency: str, locale: str) -> str:
    """Minor units as the shopper reads them, with every digit of the currency's exponent."""
    return format_money(amount, currency, locale)


def long_date(value: datetime, locale: str) -> str:
    return format_date(value.date(), format="long", locale=locale)


def web_link(url: str | None) -> str | None:
    """`url` if it is an http(s) address, else None: a message links to web pages only."""
    if url is None:
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def message_id(*, event_id: str, kind: Kind, domain: str) -> str:
    """A Message-ID derived from the event: a resent copy carries the same one, so a receiver
    (or its mail server) can drop it."""
    return f"<{event_id}.{kind}@{domain}>"


def _notice(event_id: str, kind: Kind, order: OrderOut, **facts: Any) -> Notice:
    details = OrderDetails.model_validate(order.details)
    return Notice(
        event_id=event_id,
        kind=kind,
        order_id=order.id,
        recipient=str(details.billing.email),
        name=details.billing.name,
        locale=pick_locale(details.locale),
        facts={"number": order.number, **facts},
    )


def order_paid_notice(event_id: str, event: OrderPaid, order: OrderOut) -> Notice:
    """The confirmation: every line with its amounts, shipping, tax and the total."""
    details = OrderDetails.model_validate(order.details)
    locale, currency = pick_locale(details.locale), details.currency

    def fmt(amount: int) -> str:
        return money(amount, currency, locale)

    shipping = details.shipping
    return _notice(
        event_id,
        "order_paid",
        order,
        lines=[
            {
                "name": line.name,
                "quantity": line.quantity,
                "unit_amount": fmt(line.unit_amount),
                "subtotal": fmt(line.subtotal),
            }
            for line in details.lines
        ],
        subtotal=fmt(details.subtotal),
        shipping=None
        if shipping is None
        else {
            "method": shipping.method.name,
            "amount": fmt(shipping.amount),
            "address": [
                shipping.address.name,
                shipping.address.line1,
                *([shipping.address.line2] if shipping.address.line2 else []),
                f"{shipping.address.postal_code} {shipping.address.city}",
                shipping.address.country,
            ],
        },
        tax_lines=[
            {"name": tax.display_name, "amount": fmt(tax.amount), "inclusive": tax.inclusive}
            for tax in details.tax_lines
            if tax.amount
        ],
        tax=fmt(details.tax),
        total=fmt(details.total),
    )


def order_shipped_notice(event_id: str, event: OrderFulfilled, order: OrderOut) -> Notice:
    """Shipped: the carrier, the tracking number and link, what is in the parcel."""
    return _notice(
        event_id,
        "order_shipped",
        order,
        carrier=event.carrier,
        tracking_number=event.tracking_number,
        tracking_url=web_link(event.tracking_url),
        partial=event.fulfillment_status == "partially_fulfilled",
        lines=[{"name": line.name, "quantity": line.quantity} for line in event.lines],
    )


def refund_issued_notice(event_id: str, event: RefundSucceeded, order: OrderOut) -> Notice:
    """Money went back to the shopper."""
    locale = pick_locale(OrderDetails.model_validate(order.details).locale)
    return _notice(
        event_id,
        "refund_issued",
        order,
        amount=money(event.amount, event.currency, locale),
    )


def payment_failed_notice(
    event_id: str, event: PaymentFailed, order: OrderOut, *, shop_url: str | None
) -> Notice:
    """A payment did not go through; the order waits to be paid again."""
    locale = pick_locale(OrderDetails.model_validate(order.details).locale)
    return _notice(
        event_id,
        "payment_failed",
        order,
        amount=money(order.total, order.currency, locale),
        shop_url=shop_url,
    )


def renewal_paid_notice(event_id: str, event: SubscriptionRenewed, order: OrderOut) -> Notice:
    """A subscription's new period was charged."""
    locale = pick_locale(OrderDetails.model_validate(order.details).locale)
    end = event.current_period_end
    return _notice(
        event_id,
        "renewal_paid",
        order,
        amount=money(event.amount, event.currency, locale),
        until=None if end is None else long_date(end, locale),
    )


def renewal_failed_notice(event_id: str, event: SubscriptionPastDue, order: OrderOut) -> Notice:
    """A renewal could not be charged: the link where the shopper fixes the card."""
    locale = pick_locale(OrderDetails.model_validate(order.details).locale)
    next_try = event.next_payment_attempt
    return _notice(
        event_id,
        "renewal_failed",
        order,
        amount=money(event.amount_due, event.currency, locale),
        reason=event.reason,
        fix_url=web_link(event.hosted_invoice_url),
        next_attempt=None if next_try is None else long_date(next_try, locale),
    )
