"""Renewal orders: each paid period of a subscription is an order of its own.

Payments announces a paid renewal invoice (`SubscriptionRenewed`, naming the subscription's
first order); orders records it as a new order, paid at once, with the first order's
recurring lines and their tax as frozen in its `details` — and its shipping when a recurring
line ships (the checkout made shipping a recurring line then, so the provider charges it each
period). `orders.order.created.v1` and `orders.order.paid.v1` are published for it through the
outbox in the same transaction, so `orders.order.paid.v1` fires for every paid period.

One order per invoice: the invoice reference is the primary key of `order_renewals`, claimed
first in the transaction, so a redelivered or concurrent event finds it taken and changes
nothing. What the provider charged is the order's total; when it differs from the first
order's recurring lines (a price change, a proration, a coupon) the order is still recorded
and flagged (`details.renewal.amount_differs`), never dropped. docs/subscriptions.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import structlog
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from libs.contracts.events import OrderCreated, OrderPaid, SubscriptionRenewed
from libs.contracts.orders import OrderRenewalOut
from libs.runtime.runtime import Runtime
from services.orders.domain import Order, OrderNotYetVisible, paid_lines, shipped_to
from services.orders.store import SqlOrderRepository
from services.orders.tables import RenewalRow

log = structlog.get_logger(__name__)

# Renewal order ids are derived from the invoice, so every replica and every redelivery
# names the same order (and a trace or a log line can be matched to its invoice).
RENEWAL_ORDER_NAMESPACE = uuid.UUID("6f1d3c2a-8e4b-5a7c-9d1e-2b3c4d5e6f70")


# --- the plan (pure) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RenewalPlan:
    """The renewal order to record: its frozen details and what it costs."""

    currency: str
    total: int
    details: dict[str, Any]
    amount_differs: bool


def renewal_key(renewed: SubscriptionRenewed) -> str:
    """What makes one renewal: the provider's invoice (a period, for producers without one)."""
    if renewed.invoice_reference:
        return renewed.invoice_reference
    period = renewed.current_period_end.isoformat() if renewed.current_period_end else "none"
    return f"{renewed.subscription_id}@{period}"


def renewal_order_id(key: str) -> str:
    return str(uuid.uuid5(RENEWAL_ORDER_NAMESPACE, key))


def renewal_cart_id(order_id: str) -> str:
    # A renewal has no cart; the order's cart key stays unique (and names no real cart).
    return f"renewal:{order_id}"


def recurring_shipping(first: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The first order's shipping when it recurs: it had shipping and a recurring line ships.

    The same rule as the checkout's (gateway `_pay_for_order`): such a subscription sends its
    shipping to the provider as a recurring line, so each period pays it again; otherwise the
    shipping was a one-off line of the first invoice only.
    """
    shipping = first.get("shipping")
    lines = first.get("lines", [])
    if shipping and any(line.get("interval") and line.get("shippable") for line in lines):
        return cast(Mapping[str, Any], shipping)
    return None


def _tax_lines(
    first: Mapping[str, Any], charged: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The first order's tax lines, summed again over what the renewal charges."""
    sums: dict[str, tuple[int, int]] = {}
    for item in charged:
        rate_id = item.get("tax_rate_id")
        if rate_id is None:
            continue
        taxable, tax = sums.get(rate_id, (0, 0))
        sums[rate_id] = (taxable + item["taxable_amount"], tax + item["tax"])
    return [
        {
            **tax_line,
            "taxable_amount": sums[tax_line["rate_id"]][0],
            "amount": sums[tax_line["rate_id"]][1],
        }
        for tax_line in first.get("tax_lines", [])
        if tax_line["rate_id"] in sums
    ]


def plan_renewal(first: Order, renewed: SubscriptionRenewed, *, order_id: str) -> RenewalPlan:
    """The renewal order of `renewed`: the first order's recurring lines (and recurring
    shipping) with their frozen amounts and tax, totalling what the provider charged."""
    details = first.details
    lines = [dict(line) for line in details.get("lines", []) if line.get("interval")]
    shipping = recurring_shipping(details)
    charged: list[Mapping[str, Any]] = [*lines, *([shipping] if shipping else [])]
    expected = sum(item["total"] for item in charged)
    currency = renewed.currency.strip().upper()
    differs = (renewed.amount, currency) != (expected, first.currency)
    renewal: dict[str, Any] = {
        "subscription_id": renewed.subscription_id,
        "first_order_id": first.id,
        "invoice_reference": renewal_key(renewed),
        "period_end": renewed.current_period_end.isoformat()
        if renewed.current_period_end
        else None,
        "billing_reason": renewed.billing_reason,
        "amount_differs": differs,
    }
    if differs:
        renewal["expected"] = {"total": expected, "currency": first.currency}
    planned = {
        **{key: value for key, value in details.items() if key != "renewal"},
        "cart_id": renewal_cart_id(order_id),
        "currency": currency,
        "lines": lines,
        "tax_lines": _tax_lines(details, charged),
        "subtotal": sum(line["subtotal"] for line in lines),
        "tax": sum(item["tax"] for item in charged),
        # What was charged, whatever the lines say (then `renewal.expected` says what they do).
        "total": renewed.amount,
        "shipping": dict(shipping) if shipping else None,
        "renewal": renewal,
    }
    return RenewalPlan(
        currency=currency, total=renewed.amount, details=planned, amount_differs=differs
    )


def renewal_of(order: Order) -> OrderRenewalOut | None:
    """What makes an order a renewal, from its frozen details (None: not a renewal)."""
    renewal = order.details.get("renewal")
    return None if not renewal else OrderRenewalOut.model_validate(renewal)


# --- recording it --------------------------------------------------------------------------------


async def claim_invoice(
    session: AsyncSession,
    *,
    key: str,
    order_id: str,
    renewed: SubscriptionRenewed,
    at: datetime,
) -> bool:
    """Take the invoice for this order; False when another delivery took it first.

    One statement: a concurrent delivery waits on the key until the first commits, then
    finds it taken (or takes it, if the first rolled back).
    """
    renewals = cast(Table, RenewalRow.__table__)
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(renewals)
    statement = (
        insert.values(
            invoice_reference=key,
            order_id=order_id,
            subscription_id=renewed.subscription_id,
            first_order_id=renewed.order_id,
            period_end=renewed.current_period_end,
            created_at=at,
        )
        .on_conflict_do_nothing(index_elements=[renewals.c.invoice_reference])
        .returning(renewals.c.order_id)
    )
    return (await session.execute(statement)).first() is not None


async def record_renewal(
    *,
    runtime: Runtime,
    session: AsyncSession,
    renewed: SubscriptionRenewed,
    now: datetime,
) -> Order | None:
    """The paid renewal order of one invoice, created once; None when it existed already."""
    orders = SqlOrderRepository(session)
    first = await orders.get(renewed.order_id)
    if first is None:
        # The renewal overtook its first order (or its commit): fail so the bus redelivers it.
        raise OrderNotYetVisible(f"order {renewed.order_id} is not known (yet)")
    key = renewal_key(renewed)
    order_id = renewal_order_id(key)
    paid_at = renewed.renewed_at or now
    if not await claim_invoice(session, key=key, order_id=order_id, renewed=renewed, at=now):
        log.info("order.renewal_duplicate", invoice=key, subscription_id=renewed.subscription_id)
        return None
    plan = plan_renewal(first, renewed, order_id=order_id)
    order = Order(
        id=order_id,
        number=await orders.next_number(order_id=order_id, year=paid_at.year),
        cart_id=renewal_cart_id(order_id),
        owner=first.owner,
        customer_id=first.customer_id,
        organization_id=first.organization_id,
        currency=plan.currency,
        total=plan.total,
        details=plan.details,
        created_at=paid_at,
        paid=paid_at,
    )
    await orders.add(order)
    if plan.amount_differs:
        log.error(
            "order.renewal_amount_differs",
            order_id=order.id,
            first_order_id=first.id,
            subscription_id=renewed.subscription_id,
            invoice=key,
            billing_reason=renewed.billing_reason,
            charged=f"{renewed.amount} {plan.currency}",
            expected=f"{plan.details['renewal']['expected']['total']} {first.currency}",
        )
    ordering_key = f"order:{order.id}"
    await runtime.record(
        session,
        OrderCreated(
            order_id=order.id,
            number=order.number,
            owner=order.owner,
            customer_id=order.customer_id,
            currency=order.currency,
            total=order.total,
        ),
        ordering_key=ordering_key,
    )
    await runtime.record(
        session,
        OrderPaid(
            order_id=order.id,
            number=order.number,
            owner=order.owner,
            customer_id=order.customer_id,
            currency=order.currency,
            total=order.total,
            paid_at=paid_at,
            attempt_id=None,  # a renewal is charged by the provider, with no attempt of Store's
            lines=paid_lines(order),
            shipping=shipped_to(order),
        ),
        ordering_key=ordering_key,
    )
    log.info(
        "order.renewal_paid",
        order_id=order.id,
        number=order.number,
        first_order_id=first.id,
        subscription_id=renewed.subscription_id,
        invoice=key,
        total=order.total,
    )
    return order
