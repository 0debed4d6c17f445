"""Orders: the immutable snapshot of a purchase, its number, its paid state. Pure, no I/O."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pycountry

from libs.contracts.catalog import PricingInfo, ShippingMethodOut, TaxRateOut
from libs.contracts.common import Owner
from libs.contracts.events import (
    CartLineSnapshot,
    DisputeClosed,
    DisputeOpened,
    DisputeStatus,
    PaidLine,
    RefundFailed,
    RefundSucceeded,
    ShippedTo,
)
from libs.contracts.money import normalize_currency
from libs.contracts.orders import (
    OrderDetails,
    OrderLineDetails,
    OrderRefundStatus,
    OrderShipping,
    OrderShippingMethod,
    OrderStatus,
    OrderTaxLine,
    ShippingChoice,
)
from libs.contracts.payments import BillingDetails
from libs.runtime.problems import Conflict, InvalidInput, NotFound, ProblemError
from services.orders.tax import TaxableLine, TaxRate, compute_taxes

# --- errors ------------------------------------------------------------------------------------


class OrderNotFound(NotFound):
    code, title = "order_not_found", "Order not found"


class OrderAlreadyPaid(Conflict):
    code, title = "order_already_paid", "This order is already paid"


class OrderIsCanceled(Conflict):
    code, title = "order_canceled", "This order is canceled"


class PricingUnavailable(Conflict):
    code, title = "pricing_unavailable", "A price in the cart can no longer be bought"


class CurrencyMismatch(Conflict):
    code, title = "currency_mismatch", "The cart mixes currencies"


class OrderIdConflict(Conflict):
    code, title = "order_id_conflict", "The order id is taken by another cart"


class ShippingRequired(ProblemError):
    status, code, title = 422, "shipping_required", "This order needs shipping"


class ShippingNotRequired(ProblemError):
    status, code, title = 422, "shipping_not_required", "Nothing in this order is shipped"


class OrderNotYetVisible(Exception):
    """An event names an order this service does not have (yet); the bus retries it later."""


# --- the order ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refund:
    """A refund of an order as payments reported it (the order may not be known yet)."""

    id: str
    order_id: str
    amount: int
    currency: str
    status: OrderRefundStatus
    reason: str
    created_at: datetime
    updated_at: datetime


# Both are final: a refund in one of them never changes again (the first one reported wins).
TERMINAL_REFUND_STATUSES: frozenset[OrderRefundStatus] = frozenset({"succeeded", "failed"})


def reported_refund(event: RefundSucceeded | RefundFailed) -> Refund:
    """The refund an event reports; the provider's `canceled` reads as `failed` on the order."""
    if isinstance(event, RefundSucceeded):
        status: OrderRefundStatus = "succeeded"
        at = event.succeeded_at
    else:
        status, at = "failed", event.failed_at
    return Refund(
        id=event.refund_id,
        order_id=event.order_id,
        amount=event.amount,
        currency=event.currency.strip().upper(),
        status=status,
        reason=event.reason,
        created_at=event.created_at,
        updated_at=at,
    )


def refunded_amount(currency: str, refunds: Iterable[Refund]) -> int:
    """Σ of the succeeded refunds in the order's currency (integers: exact)."""
    return sum(r.amount for r in refunds if r.status == "succeeded" and r.currency == currency)


@dataclass(frozen=True)
class Dispute:
    """A dispute of an order's payment as payments reported it; open while `closed_at` is None."""

    id: str
    order_id: str
    amount: int
    currency: str
    reason: str
    status: DisputeStatus
    evidence_due_by: datetime | None
    opened_at: datetime
    closed_at: datetime | None


def reported_dispute(event: DisputeOpened | DisputeClosed, *, order_id: str) -> Dispute:
    """The dispute an event reports, for the order it names."""
    return Dispute(
        id=event.dispute_id,
        order_id=order_id,
        amount=event.amount,
        currency=event.currency.strip().upper(),
        reason=event.reason,
        status=event.status,
        evidence_due_by=event.evidence_due_by,
        opened_at=event.opened_at,
        closed_at=event.closed_at if isinstance(event, DisputeClosed) else None,
    )


@dataclass(frozen=True)
class FulfilledLine:
    """How many of one order line (by its price) one fulfilment shipped."""

    pricing_id: str
    product_key: str
    name: str
    quantity: int


@dataclass(frozen=True)
class Fulfillment:
    """Goods of a paid order handed to a carrier; never changes once recorded."""

    id: str
    order_id: str
    carrier: str
    tracking_number: str
    tracking_url: str | None
    lines: tuple[FulfilledLine, ...]
    actor: str | None
    created_at: datetime


@dataclass(frozen=True)
class Order:
    id: str
    number: str
    cart_id: str
    owner: Owner
    customer_id: str | None
    organization_id: str | None
    currency: str
    total: int
    details: Mapping[str, Any]
    created_at: datetime
    paid: datetime | None = None
    paid_attempt_id: str | None = None
    backordered: bool = False
    canceled_at: datetime | None = None
    canceled_by: str | None = None
    cancel_reason: str | None = None
    # Read beside the order (they change; the order does not), so not part of its equality.
    refunds: tuple[Refund, ...] = field(default=(), compare=False)
    disputes: tuple[Dispute, ...] = field(default=(), compare=False)
    fulfillments: tuple[Fulfillment, ...] = field(default=(), compare=False)

    @property
    def refunded_amount(self) -> int:
        return refunded_amount(self.currency, self.refunds)

    @property
    def status(self) -> OrderStatus:
        """`canceled` once canceled (it is then never paid), else `paid` once paid, else
        `pending`."""
        if self.canceled_at is not None:
            return "canceled"
        return "paid" if self.paid is not None else "pending"


def paid_lines(order: Order) -> list[PaidLine]:
    """The lines a paid-order event carries, from the order's frozen details."""
    return [
        PaidLine(
            pricing_id=line["pricing_id"],
            product_key=line["product_key"],
            name=line["name"],
            quantity=line["quantity"],
            # Orders placed before lines recorded it count as not shippable.
            shippable=line.get("shippable", False),
        )
        for line in order.details.get("lines", [])
    ]


def shipped_to(order: Order) -> ShippedTo | None:
    """Where a paid order's goods go, for its paid event (None: nothing ships)."""
    shipping = order.details.get("shipping")
    if not shipping:
        return None
    return ShippedTo(
        method_code=shipping["method"]["code"],
        method_name=shipping["method"]["name"],
        **shipping["address"],
    )


def order_number(year: int, value: int) -> str:
    """A short, sortable, human-friendly number: the year and a zero-padded sequence value."""
    return f"{year}-{value:06d}"


def parse_currency(code: str) -> str:
    try:
        return normalize_currency(code)
    except ValueError as exc:
        raise InvalidInput.for_field("currency", str(exc), code="unknown_currency") from None


def parse_country(code: str, field: str = "billing.address.country") -> str:
    country = code.strip().upper()
    if pycountry.countries.get(alpha_2=country) is None:
        raise InvalidInput.for_field(field, f"unknown country {country!r}", code="unknown_country")
    return country


# --- the snapshot ------------------------------------------------------------------------------


def check_pricings(
    lines: Sequence[CartLineSnapshot], pricings: Mapping[str, PricingInfo], currency: str
) -> None:
    """Every line's price exists, can be sold now and is in the order's currency."""
    unavailable = sorted(
        {
            line.pricing_id
            for line in lines
            if line.pricing_id not in pricings or not pricings[line.pricing_id].active
        }
    )
    if unavailable:
        raise PricingUnavailable(
            f"Not available any more: {', '.join(unavailable)}.",
            extra={"pricing_ids": unavailable},
        )
    mismatched = sorted(
        {
            line.pricing_id
            for line in lines
            if pricings[line.pricing_id].currency.strip().upper() != currency
        }
    )
    if mismatched:
        raise CurrencyMismatch(
            f"Not priced in {currency}: {', '.join(mismatched)}.",
            extra={"pricing_ids": mismatched},
        )


def choose_tax_rate(rates: Iterable[TaxRateOut], tax_code: str | None) -> TaxRateOut | None:
    """The rate for a product's tax code: one made for that code, else the country's default.

    Ties (a misconfiguration) go to the lowest id, so the choice never depends on query order.
    """
    candidates = list(rates)
    specific = [rate for rate in candidates if tax_code is not None and rate.tax_code == tax_code]
    default = [rate for rate in candidates if rate.tax_code is None]
    for group in (specific, default):
        if group:
            return min(group, key=lambda rate: rate.id)
    return None


@dataclass(frozen=True)
class ShippingTerms:
    """The shipping of an order before tax: the shopper's choice, the method as the catalog
    prices it in the order's currency, and the destination's rate for its tax code."""

    choice: ShippingChoice
    method: ShippingMethodOut
    tax_rate: TaxRateOut | None


def requires_shipping(
    lines: Sequence[CartLineSnapshot], pricings: Mapping[str, PricingInfo]
) -> bool:
    """Any line is a physical good."""
    return any(pricings[line.pricing_id].shippable for line in lines if line.pricing_id in pricings)


def check_shipping(*, required: bool, choice: ShippingChoice | None) -> None:
    """Shipping is given exactly when something is shipped."""
    if required and choice is None:
        raise ShippingRequired(
            "The cart holds goods to ship: give `shipping` with a method and an address.",
            errors=InvalidInput.for_field("shipping", "required for shippable goods").errors,
        )
    if not required and choice is not None:
        raise ShippingNotRequired(
            "Nothing in the cart is shipped: leave `shipping` out.",
            errors=InvalidInput.for_field("shipping", "nothing to ship").errors,
        )


def shipping_price(method: ShippingMethodOut, goods_subtotal: int) -> tuple[int, bool]:
    """What the method charges for goods costing `goods_subtotal` (the lines' subtotal, before
    exclusive tax); True when free because the free-over amount is reached."""
    if method.free_over is not None and goods_subtotal >= method.free_over:
        return 0, True
    return method.amount, False


def _rate(rate: TaxRateOut | None) -> TaxRate | None:
    if rate is None:
        return None
    return TaxRate(
        rate_id=rate.id,
        percentage=rate.percentage,
        inclusive=rate.inclusive,
        display_name=rate.display_name,
    )


def build_details(
    *,
    cart_id: str,
    customer_id: str | None,
    locale: str,
    currency: str,
    billing: BillingDetails,
    lines: Sequence[CartLineSnapshot],
    pricings: Mapping[str, PricingInfo],
    tax_rates: Mapping[str | None, TaxRateOut | None],
    shipping: ShippingTerms | None = None,
) -> OrderDetails:
    """The snapshot of a purchase: priced lines, taxes per line and per rate, exact totals.

    `tax_rates` maps each product tax code (None for products without one) to its rate, or to
    None when the billing country taxes it at nothing. Shipping is taxed as one more line, with
    the destination's rate, so it follows the lines' rounding and joins their tax lines.
    """
    check_pricings(lines, pricings, currency)
    infos = [pricings[line.pricing_id] for line in lines]
    rates = [tax_rates.get(info.tax_code) for info in infos]
    taxable = [
        TaxableLine(unit_amount=info.unit_amount, quantity=line.quantity, tax_rate=_rate(rate))
        for line, info, rate in zip(lines, infos, rates, strict=True)
    ]
    shipping_amount, free = 0, False
    if shipping is not None:
        goods = sum(line.unit_amount * line.quantity for line in taxable)
        shipping_amount, free = shipping_price(shipping.method, goods)
        taxable.append(
            TaxableLine(unit_amount=shipping_amount, quantity=1, tax_rate=_rate(shipping.tax_rate))
        )
    taxed = compute_taxes(taxable, currency)
    line_results = taxed.lines[: len(infos)]
    order_shipping = None
    if shipping is not None:
        result = taxed.lines[-1]
        order_shipping = OrderShipping(
            method=OrderShippingMethod(
                code=shipping.method.code,
                name=shipping.method.name,
                delivery_days_min=shipping.method.delivery_days_min,
                delivery_days_max=shipping.method.delivery_days_max,
            ),
            address=shipping.choice.address,
            amount=result.subtotal,
            taxable_amount=result.taxable_amount,
            tax=result.tax,
            total=result.total,
            tax_rate_id=result.rate_id,
            tax_code=shipping.method.tax_code,
            free=free,
        )
    detail_lines = [
        OrderLineDetails(
            pricing_id=info.pricing_id,
            product_key=info.product_key,
            name=info.name,
            checkout_description=info.checkout_description,
            unit_amount=result.unit_amount,
            quantity=result.quantity,
            interval=info.interval,
            interval_count=info.interval_count,
            subtotal=result.subtotal,
            taxable_amount=result.taxable_amount,
            tax=result.tax,
            total=result.total,
            tax_rate_id=result.rate_id,
            tax_code=info.tax_code,
            shippable=info.shippable,
        )
        for info, result in zip(infos, line_results, strict=True)
    ]
    return OrderDetails(
        cart_id=cart_id,
        customer_id=customer_id,
        locale=locale,
        currency=taxed.currency,
        lines=detail_lines,
        tax_lines=[
            OrderTaxLine(
                rate_id=tax_line.rate_id,
                display_name=tax_line.display_name,
                percentage=tax_line.percentage,
                inclusive=tax_line.inclusive,
                taxable_amount=tax_line.taxable_amount,
                amount=tax_line.amount,
            )
            for tax_line in taxed.tax_lines
        ],
        subtotal=sum(result.subtotal for result in line_results),
        tax=taxed.tax,
        total=taxed.total,
        billing=billing,
        shipping=order_shipping,
        statement_descriptor=infos[0].statement_descriptor,
    )


# --- the archive's cursor ----------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """Where a page of the archive ends: the last order's (created_at, id)."""

    created_at: datetime
    order_id: str

    def encode(self) -> str:
        raw = json.dumps([self.created_at.isoformat(), self.order_id], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """Parse a cursor given back by a client; anything else is a 422 on `cursor`."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            created_at, order_id = json.loads(raw)
            moment = datetime.fromisoformat(created_at)
            if moment.tzinfo is None or not isinstance(order_id, str):
                raise ValueError("incomplete cursor")
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise InvalidInput.for_field(
                "cursor", "not a cursor this service gave out", code="invalid_cursor"
            ) from None
        return cls(created_at=moment, order_id=order_id)
