"""`DevProvider`: a payment provider with no outside service, for embedded mode and tests.

Its hosted checkout is a page served by the payments service itself (`/dev-checkout/...`,
public as `/api/payments/dev-checkout/...` through the gateway). The page's Pay and Decline
buttons, the dev expiry and the dev renewal turn into the same `ProviderEvent`s a verified
Stripe webhook would produce, with deterministic ids where a repeat must change nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from typing import Any

from libs.contracts.money import format_money
from libs.contracts.payments import PaymentLine
from services.payments.domain import WebhooksNotConfigured, add_interval
from services.payments.provider import (
    CheckoutRequest,
    CheckoutSession,
    EventKind,
    ProviderCustomer,
    ProviderEvent,
    ProviderRefund,
    ProviderSubscription,
    RefundRequest,
)


class DevProvider:
    """The `PaymentProvider` that charges nobody: a page with Pay and Decline."""

    name = "dev"

    def __init__(
        self, *, checkout_url: Callable[[str], str], checkout_ttl: timedelta = timedelta(days=1)
    ) -> None:
        self._checkout_url = checkout_url
        self.checkout_ttl = checkout_ttl

    def check_limits(self, currency: str, lines: Sequence[PaymentLine]) -> None:
        return None

    async def ensure_customer(self, customer: ProviderCustomer) -> str | None:
        return None

    async def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        return CheckoutSession(
            session_id=f"dev_cs_{request.attempt_id}",
            url=self._checkout_url(request.attempt_id),
            expires_at=request.expires_at,
        )

    async def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        raise WebhooksNotConfigured("The dev provider receives no webhooks.")

    async def cancel_subscription(
        self, provider_subscription_id: str, *, idempotency_key: str
    ) -> ProviderSubscription | None:
        # Nothing to tell anyone: the flag on Store's own record is the whole cancellation.
        return ProviderSubscription(id=provider_subscription_id, cancel_at_period_end=True)

    async def expire_checkout(self, session_id: str) -> None:
        # The page accepts only unpaid attempts: closing the attempt closes the page.
        return None

    async def refund(self, request: RefundRequest) -> ProviderRefund:
        # No money moved, so none goes back; the refund is recorded all the same.
        return ProviderRefund(id=f"dev_re_{request.refund_id}", status="succeeded")

    async def refund_status(self, provider_refund_id: str) -> ProviderRefund:
        return ProviderRefund(id=provider_refund_id, status="succeeded")

    async def billing_portal(
        self, *, provider_customer_id: str | None, subscription_id: str, return_url: str
    ) -> str:
        # The dev portal page: relative, made absolute on the public URL by the gateway.
        return DEV_PORTAL.format(id=subscription_id)

    async def checkout_status(self, session_id: str) -> ProviderEvent | None:
        # The dev page reports through Store itself: no webhook can be lost.
        return None

    async def paid_invoices(
        self, provider_subscription_id: str, *, since: datetime
    ) -> Sequence[ProviderEvent]:
        # A dev renewal is applied the moment it is made (`dev_renew`): none is ever lost.
        return ()

    async def aclose(self) -> None:
        return None


# --- what the page's buttons and the dev actions report --------------------------------------


def _checkout_event(
    happened: str, kind: EventKind, *, attempt_id: str, order_id: str, now: datetime, **facts: Any
) -> ProviderEvent:
    """What the dev checkout page of one attempt reports: `happened` names the event."""
    return ProviderEvent(
        provider="dev",
        id=f"dev_evt_{attempt_id}_{happened}",
        type=f"dev.checkout.{happened}",
        kind=kind,
        created=now,
        attempt_id=attempt_id,
        order_id=order_id,
        session_id=f"dev_cs_{attempt_id}",
        **facts,
    )


def _money(attempt_id: str, total: int, currency: str) -> dict[str, Any]:
    """The facts of money that arrived for an attempt."""
    return {
        "paid": True,
        "payment_status": "paid",
        "amount": total,
        "currency": currency,
        "provider_reference": f"dev_pay_{attempt_id}",
    }


def paid_event(
    *,
    attempt_id: str,
    order_id: str,
    total: int,
    currency: str,
    now: datetime,
    cycle: tuple[str, int] | None,
) -> ProviderEvent:
    """The shopper pressed Pay: a completed, paid checkout (with its subscription if any)."""
    subscription = None
    if cycle is not None:
        interval, count = cycle
        subscription = ProviderSubscription(
            id=f"dev_sub_{attempt_id}",
            status="active",
            current_period_end=add_interval(now, interval, count),
            cancel_at_period_end=False,
        )
    return _checkout_event(
        "paid",
        "checkout_completed",
        attempt_id=attempt_id,
        order_id=order_id,
        now=now,
        subscription=subscription,
        **_money(attempt_id, total, currency),
    )


def pay_later_event(*, attempt_id: str, order_id: str, now: datetime) -> ProviderEvent:
    """The shopper chose a delayed method (like SEPA Debit): a completed checkout whose money
    is still on its way."""
    return _checkout_event(
        "pay_later",
        "checkout_completed",
        attempt_id=attempt_id,
        order_id=order_id,
        now=now,
        paid=False,
        payment_status="unpaid",
    )


def settled_event(
    *, attempt_id: str, order_id: str, total: int, currency: str, now: datetime, succeeded: bool
) -> ProviderEvent:
    """The delayed payment settles: the money arrived, or the debit was refused."""
    if not succeeded:
        return _checkout_event(
            "debit_failed",
            "payment_failed",
            attempt_id=attempt_id,
            order_id=order_id,
            now=now,
            reason="async_payment_failed",
        )
    return _checkout_event(
        "debit_succeeded",
        "payment_succeeded",
        attempt_id=attempt_id,
        order_id=order_id,
        now=now,
        **_money(attempt_id, total, currency),
    )


def declined_event(*, attempt_id: str, order_id: str, now: datetime) -> ProviderEvent:
    """The shopper pressed Decline: the payment failed."""
    return _checkout_event(
        "declined",
        "payment_failed",
        attempt_id=attempt_id,
        order_id=order_id,
        now=now,
        reason="declined",
    )


def expired_event(*, attempt_id: str, order_id: str, now: datetime) -> ProviderEvent:
    """The dev checkout stayed open past its expiry."""
    return _checkout_event(
        "expired", "checkout_expired", attempt_id=attempt_id, order_id=order_id, now=now
    )


def renewal_event(
    *,
    provider_subscription_id: str,
    amount: int,
    currency: str,
    interval: str,
    interval_count: int,
    current_period_end: datetime | None,
    cancel_at_period_end: bool,
    now: datetime,
) -> ProviderEvent:
    """The period ended: the next one is paid, or the subscription ends if set to cancel."""
    token = uuid.uuid4().hex
    period_start = current_period_end or now
    if cancel_at_period_end:
        return ProviderEvent(
            provider="dev",
            id=f"dev_evt_{token}",
            type="dev.subscription.deleted",
            kind="subscription_deleted",
            created=now,
            subscription=ProviderSubscription(
                id=provider_subscription_id,
                status="canceled",
                cancel_at_period_end=True,
                ended_at=period_start,
            ),
        )
    period_end = add_interval(period_start, interval, interval_count)
    return ProviderEvent(
        provider="dev",
        id=f"dev_evt_{token}",
        type="dev.invoice.paid",
        kind="invoice_paid",
        created=now,
        paid=True,
        amount=amount,
        currency=currency,
        provider_reference=f"dev_in_{token}",
        invoice_id=f"dev_in_{token}",
        billing_reason="subscription_cycle",
        period_end=period_end,
        subscription=ProviderSubscription(
            id=provider_subscription_id, status="active", current_period_end=period_end
        ),
    )


# --- the hosted page -------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckoutPage:
    attempt_id: str
    order_number: str
    status: str
    currency: str
    total: int
    lines: Sequence[PaymentLine]
    checkout_url: str
    success_url: str
    cancel_url: str


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}"
    "table{width:100%;border-collapse:collapse}td,th{padding:.4rem;border-bottom:1px solid #ddd}"
    "td.n,th.n{text-align:right}form{display:inline-block;margin:1rem 1rem 0 0}"
    "button{font-size:1rem;padding:.6rem 1.4rem}.note{color:#666;font-size:.9rem}"
)


def render_checkout_page(page: CheckoutPage) -> str:
    """The dev provider's hosted checkout: the order, its lines and total, Pay, Decline and Pay
    later (a delayed method, settled or refused from the same page)."""

    def money(amount: int) -> str:
        return escape(format_money(amount, page.currency))

    rows = []
    for line in page.lines:
        every = ""
        if line.interval:
            count = f"{line.interval_count} " if line.interval_count != 1 else ""
            plural = "s" if line.interval_count != 1 else ""
            every = f" / {count}{line.interval}{plural}"
        rows.append(
            "<tr>"
            f"<td>{escape(line.name)}</td>"
            f'<td class="n">{line.quantity}</td>'
            f'<td class="n">{money(line.unit_amount)}{escape(every)}</td>'
            f'<td class="n">{money(line.unit_amount * line.quantity)}</td>'
            "</tr>"
        )
    if page.status == "unpaid":
        action = escape(page.checkout_url, quote=True)
        actions = (
            f'<form method="post" action="{action}/pay">'
            '<button type="submit" name="action" value="pay">Pay</button></form>'
            f'<form method="post" action="{action}/decline">'
            '<button type="submit" name="action" value="decline">Decline</button></form>'
            f'<form method="post" action="{action}/pay-later">'
            '<button type="submit" name="action" value="pay-later">Pay by bank debit '
            "(settles later)</button></form>"
        )
    elif page.status == "processing":
        action = escape(page.checkout_url, quote=True)
        actions = (
            '<p>The payment is <strong id="status">processing</strong>: the bank debit has not '
            "settled yet.</p>"
            f'<form method="post" action="{action}/settle">'
            '<button type="submit" name="action" value="settle">Debit succeeds</button></form>'
            f'<form method="post" action="{action}/refuse">'
            '<button type="submit" name="action" value="refuse">Debit fails</button></form>'
        )
    else:
        back = page.success_url if page.status == "paid" else page.cancel_url
        actions = (
            f'<p>This checkout is <strong id="status">{escape(page.status)}</strong>. '
            f'<a href="{escape(back, quote=True)}">Return to the shop</a></p>'
        )
    return (
        "<!doctype html>"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Pay order {escape(page.order_number)}</title><style>{_STYLE}</style></head>"
        "<body>"
        f'<h1>Order <span id="order-number">{escape(page.order_number)}</span></h1>'
        '<table><thead><tr><th>Item</th><th class="n">Qty</th><th class="n">Price</th>'
        '<th class="n">Amount</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody>"
        f'<tfoot><tr><th colspan="3">Total</th><th class="n" id="total">{money(page.total)}'
        "</th></tr></tfoot></table>"
        f"{actions}"
        '<p class="note">Development payment provider: no money moves.</p>'
        "</body></html>"
    )


DEV_PORTAL = "/api/payments/dev-checkout/subscriptions/{id}/portal"


def render_portal_page(
    *,
    subscription_id: str,
    status: str,
    amount: int,
    currency: str,
    interval: str,
    cancel_at_period_end: bool,
    current_period_end: datetime | None,
    done: str | None,
) -> str:
    """The dev provider's billing portal: the subscription, Update card and Cancel."""
    base = escape(DEV_PORTAL.format(id=subscription_id), quote=True)
    until = current_period_end.date().isoformat() if current_period_end else "—"
    notes = {
        "card": "Your card was updated (no card is charged here).",
        "cancel": "Your subscription ends with the current period.",
    }
    note = f'<p class="note" id="done">{escape(notes[done])}</p>' if done in notes else ""
    actions = ""
    if status != "canceled":
        actions = (
            f'<form method="post" action="{base}/card">'
            '<button type="submit">Update card</button></form>'
        )
        if not cancel_at_period_end:
            actions += (
                f'<form method="post" action="{base}/cancel">'
                '<button type="submit">Cancel subscription</button></form>'
            )
    ends = " (ends then)" if cancel_at_period_end else ""
    return (
        "<!doctype html>"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Manage your subscription</title><style>{_STYLE}</style></head>"
        "<body><h1>Manage your subscription</h1>"
        f'<p>Status: <strong id="status">{escape(status)}</strong></p>'
        f"<p>{escape(format_money(amount, currency))} every {escape(interval)}; "
        f"current period until {escape(until)}{ends}.</p>"
        f"{note}{actions}"
        '<p><a href="/shop/">Back to the shop</a></p>'
        '<p class="note">Development billing portal: nothing is charged.</p>'
        "</body></html>"
    )
