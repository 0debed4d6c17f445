"""`StripeProvider`: Checkout Sessions, customers, subscriptions and webhooks with the stripe SDK.

All calls use the SDK's async methods (its httpx client), so the event loop never blocks.
Every write carries an idempotency key derived from Store's own ids, so a retried request
(after a timeout, a crash, a second click) opens the same session or the same customer.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final

import stripe
import structlog
from stripe.params import RefundCreateParams

from libs.contracts.money import currency_exponent
from libs.contracts.payments import PaymentLine, ShippingAddress
from libs.runtime.problems import InvalidInput
from services.payments.domain import (
    EU_COUNTRIES,
    InvalidSignature,
    InvalidWebhookPayload,
    PaymentRejected,
    ProviderUnavailable,
    UnsupportedApiVersion,
)
from services.payments.metrics import payments_metrics
from services.payments.provider import (
    CheckoutRequest,
    CheckoutSession,
    EventKind,
    ProviderCustomer,
    ProviderDispute,
    ProviderEvent,
    ProviderRefund,
    ProviderSubscription,
    RefundRequest,
    RefundStatus,
)

log = structlog.get_logger(__name__)

# Stripe's own minor units where they differ from ISO 4217 (docs.stripe.com/currencies).
# Zero-decimal at Stripe: amounts are whole units.
STRIPE_ZERO_DECIMAL: Final[frozenset[str]] = frozenset(
    {
        "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND",
        "VUV", "XAF", "XOF", "XPF",
    }
)  # fmt: skip
# Three-decimal at Stripe, and the last digit must be 0 (card networks settle in 1/100).
STRIPE_THREE_DECIMAL: Final[frozenset[str]] = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
# Everything else is two-decimal at Stripe — including ISK (ISO 0), which Stripe keeps as
# two-decimal for backwards compatibility, so 5 ISK is sent as 500.

# The Stripe API version this adapter is written for (its request and event shapes), sent on
# every request; the SDK floor in pyproject.toml is the first SDK that pins it.
STRIPE_API_VERSION: Final = "2026-10-28.endive"

# Stripe's limits, checked before calling it so that a shopper gets a clear 422.
MAX_LINE_ITEMS: Final = 100  # payment mode
MAX_SUBSCRIPTION_ITEMS: Final = 20  # subscription mode: recurring, and one-time, each
MAX_AMOUNT: Final = 99_999_999  # in Stripe's units: eight digits
MAX_INTERVAL: Final[dict[str, int]] = {"day": 1095, "week": 156, "month": 36, "year": 3}
# Smallest charge per settlement currency, in Stripe's units (docs.stripe.com/currencies).
MIN_CHARGE: Final[dict[str, int]] = {
    "USD": 50, "AED": 200, "AUD": 50, "BGN": 100, "BRL": 50, "CAD": 50, "CHF": 50, "CZK": 1500,
    "DKK": 250, "EUR": 50, "GBP": 30, "HKD": 400, "HUF": 17500, "INR": 50, "JPY": 50,
    "MXN": 1000, "MYR": 200, "NOK": 300, "NZD": 50, "PLN": 200, "RON": 200, "SEK": 300,
    "SGD": 50, "THB": 1000,
}  # fmt: skip

DESCRIPTOR_MAX = 22
_DESCRIPTOR_FORBIDDEN = re.compile(r"[<>\\'\"*]")

SIGNATURE_HEADER = "stripe-signature"

# A subscription in one of these states has ended for good and never bills again.
SUBSCRIPTION_ENDED: Final = frozenset({"canceled", "incomplete_expired"})

HANDLED: Final[dict[str, EventKind]] = {
    "checkout.session.completed": "checkout_completed",
    "checkout.session.async_payment_succeeded": "payment_succeeded",
    "checkout.session.async_payment_failed": "payment_failed",
    "checkout.session.expired": "checkout_expired",
    "invoice.paid": "invoice_paid",
    "invoice.payment_failed": "invoice_payment_failed",
    "invoice.payment_action_required": "invoice_action_required",
    "customer.subscription.updated": "subscription_updated",
    "customer.subscription.deleted": "subscription_deleted",
    "refund.created": "refund_updated",
    "refund.updated": "refund_updated",
    "refund.failed": "refund_updated",
    "charge.refund.updated": "refund_updated",
    "charge.dispute.created": "dispute_updated",
    "charge.dispute.updated": "dispute_updated",
    "charge.dispute.closed": "dispute_updated",
}

# A dispute in one of these states is over (an inquiry closed without a chargeback, won, lost,
# or prevented before it became one).
DISPUTE_CLOSED: Final = frozenset({"warning_closed", "won", "lost", "prevented"})
DISPUTE_STATUSES: Final = DISPUTE_CLOSED | {
    "warning_needs_response",
    "warning_under_review",
    "needs_response",
    "under_review",
}

# A Stripe refund's status as Store's: `requires_action` waits on the shop (Stripe e-mails
# it), so the refund is still pending.
REFUND_STATUS: Final[dict[str, RefundStatus]] = {
    "pending": "pending",
    "requires_action": "pending",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "canceled",
}

# Store's refund reasons Stripe has a name for; the others go without one (the metadata says).
STRIPE_REFUND_REASON: Final[dict[str, str]] = {
    "order_already_paid": "duplicate",
    "operator": "requested_by_customer",
}


def stripe_exponent(currency: str) -> int:
    """How many decimals Stripe expects in `amount` fields for this currency."""
    code = currency.upper()
    if code in STRIPE_ZERO_DECIMAL:
        return 0
    if code in STRIPE_THREE_DECIMAL:
        return 3
    return 2


def to_stripe_amount(amount: int, currency: str) -> int:
    """ISO 4217 minor units -> Stripe's units; ValueError if Stripe cannot express it."""
    shift = stripe_exponent(currency) - currency_exponent(currency)
    if shift >= 0:
        converted = amount * 10**shift
    else:
        factor = 10**-shift
        if amount % factor:
            raise ValueError(
                f"{currency.upper()} amounts at Stripe are whole multiples of {factor} minor units"
            )
        converted = amount // factor
    if currency.upper() in STRIPE_THREE_DECIMAL and converted % 10:
        raise ValueError(f"{currency.upper()} amounts at Stripe must end in 0 (e.g. 5.120)")
    return converted


def from_stripe_amount(amount: int, currency: str) -> int:
    """Stripe's units -> ISO 4217 minor units."""
    shift = currency_exponent(currency) - stripe_exponent(currency)
    if shift >= 0:
        return amount * 10**shift
    return amount // 10**-shift


def check_stripe_limits(currency: str, lines: Sequence[PaymentLine]) -> None:
    """Raise a 422 naming the first of Stripe's limits these lines break."""
    recurring = [line for line in lines if line.interval]
    if not recurring and len(lines) > MAX_LINE_ITEMS:
        raise InvalidInput.for_field(
            "lines", f"Stripe takes at most {MAX_LINE_ITEMS} lines", code="too_many_lines"
        )
    if recurring and max(len(recurring), len(lines) - len(recurring)) > MAX_SUBSCRIPTION_ITEMS:
        raise InvalidInput.for_field(
            "lines",
            f"a subscription takes at most {MAX_SUBSCRIPTION_ITEMS} recurring and "
            f"{MAX_SUBSCRIPTION_ITEMS} one-time lines",
            code="too_many_lines",
        )
    total = 0
    for index, line in enumerate(lines):
        field = f"lines.{index}"
        try:
            unit = to_stripe_amount(line.unit_amount, currency)
        except ValueError as exc:
            raise InvalidInput.for_field(
                f"{field}.unit_amount", str(exc), code="amount_not_chargeable"
            ) from None
        if unit > MAX_AMOUNT:
            raise InvalidInput.for_field(
                f"{field}.unit_amount",
                f"Stripe charges at most {MAX_AMOUNT} {currency.upper()} units per item",
                code="amount_too_large",
            )
        if line.interval and line.interval_count > MAX_INTERVAL.get(line.interval, 0):
            raise InvalidInput.for_field(
                f"{field}.interval_count",
                "a billing interval is at most three years "
                f"({MAX_INTERVAL.get(line.interval, 0)} {line.interval}s)",
                code="interval_too_long",
            )
        total += unit * line.quantity
    if total > MAX_AMOUNT:
        raise InvalidInput.for_field(
            "amount", f"Stripe charges at most {MAX_AMOUNT} units at once", code="amount_too_large"
        )
    minimum = MIN_CHARGE.get(currency.upper())
    if minimum is not None and 0 < total < minimum:
        raise InvalidInput.for_field(
            "amount",
            f"Stripe charges at least {minimum} {currency.upper()} units",
            code="amount_too_small",
        )


def statement_descriptor_suffix(text: str | None) -> str | None:
    """A card statement descriptor suffix Stripe accepts: Latin, no <>\\'"*, at most 22 chars."""
    if not text:
        return None
    ascii_text = text.encode("ascii", "ignore").decode()
    cleaned = " ".join(_DESCRIPTOR_FORBIDDEN.sub("", ascii_text).split())[:DESCRIPTOR_MAX].strip()
    return cleaned if any(c.isalpha() for c in cleaned) else None


def shipping_details(address: ShippingAddress) -> dict[str, Any]:
    """A payment's `shipping`: the recipient, a phone if given, the address without blanks."""
    details: dict[str, Any] = {
        "name": address.name,
        "address": {
            key: value
            for key, value in {
                "line1": address.line1,
                "line2": address.line2,
                "city": address.city,
                "postal_code": address.postal_code,
                "state": address.state,
                "country": address.country.upper(),
            }.items()
            if value
        },
    }
    if address.phone:
        details["phone"] = address.phone
    return details


def _timestamp(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    return datetime.fromtimestamp(_whole(value, "timestamp"), UTC)


def _whole(value: Any, field: str) -> int:
    """An integer field of a Stripe object: an int, never a string, float or bool."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidWebhookPayload(f"`{field}` is not an integer: {value!r:.40}")
    return value


def _amount(value: Any, currency: str | None, field: str) -> int | None:
    """A Stripe amount in ISO minor units (None when absent)."""
    if value is None:
        return None
    amount = _whole(value, field)
    if amount < 0 or currency is None:
        raise InvalidWebhookPayload(f"`{field}` {amount} has no currency or is negative")
    return from_stripe_amount(amount, currency)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidWebhookPayload(f"not a string: {value!r:.40}")
    return value or None


def _currency(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != 3 or not value.isalpha():
        raise InvalidWebhookPayload(f"`currency` is not a currency code: {value!r:.40}")
    return value.upper()


def _id(value: Any) -> str | None:
    """An id field that may have been expanded into the object it names (a dict from an
    event's JSON, or an SDK object, which is not a dict)."""
    if isinstance(value, Mapping):
        return str(value.get("id")) if value.get("id") else None
    if isinstance(value, stripe.StripeObject):
        found = getattr(value, "id", None)
        return str(found) if found else None
    return str(value) if value else None


def _metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidWebhookPayload(f"`metadata` is not an object: {value!r:.40}")
    return {str(k): str(v) for k, v in value.items()}


def refund_from_stripe(obj: Mapping[str, Any]) -> ProviderRefund:
    """A Stripe Refund (an event's JSON or an SDK object) as Store sees it."""
    status = REFUND_STATUS.get(str(obj.get("status")))
    if status is None:
        raise InvalidWebhookPayload(f"a refund of unknown status {obj.get('status')!r:.40}")
    currency = _currency(obj.get("currency"))
    return ProviderRefund(
        id=_id(obj.get("id")),
        status=status,
        failure_reason=str(obj["failure_reason"]) if obj.get("failure_reason") else None,
        store_refund_id=_metadata(obj.get("metadata")).get("refund_id"),
        amount=_amount(obj.get("amount"), currency, "amount"),
        currency=currency,
        payment_reference=_id(obj.get("payment_intent")),
    )


def dispute_from_stripe(obj: Mapping[str, Any]) -> ProviderDispute:
    """A Stripe Dispute (an event's JSON) as Store sees it."""
    status = str(obj.get("status"))
    if status not in DISPUTE_STATUSES:
        raise InvalidWebhookPayload(f"a dispute of unknown status {status!r:.40}")
    currency = _currency(obj.get("currency"))
    amount = _amount(obj.get("amount"), currency, "amount")
    dispute_id = _id(obj.get("id"))
    if dispute_id is None or amount is None or currency is None:
        raise InvalidWebhookPayload("a dispute without `id`, `amount` and `currency`")
    evidence = obj.get("evidence_details") or {}
    if not isinstance(evidence, Mapping):
        raise InvalidWebhookPayload("`evidence_details` is not an object")
    return ProviderDispute(
        id=dispute_id,
        status=status,
        reason=str(obj.get("reason") or "general"),
        amount=amount,
        currency=currency,
        payment_reference=_id(obj.get("payment_intent")) or _id(obj.get("charge")),
        evidence_due_by=_timestamp(evidence.get("due_by")),
        closed=status in DISPUTE_CLOSED,
    )


def subscription_from_stripe(obj: Mapping[str, Any]) -> ProviderSubscription:
    """Normalize a Stripe subscription (its period ends live on its items)."""
    ends: list[int] = [
        int(item["current_period_end"])
        for item in ((obj.get("items") or {}).get("data") or [])
        if item.get("current_period_end")
    ]
    period_end = max(ends) if ends else None
    return ProviderSubscription(
        id=str(obj["id"]),
        status=obj.get("status"),
        current_period_end=_timestamp(period_end),
        cancel_at_period_end=bool(obj.get("cancel_at_period_end")),
        canceled_at=_timestamp(obj.get("canceled_at")),
        ended_at=_timestamp(obj.get("ended_at")),
        metadata=_metadata(obj.get("metadata")),
    )


def normalize_stripe_event(event: Mapping[str, Any]) -> ProviderEvent:
    """A verified Stripe event as a provider-neutral `ProviderEvent`; 400 `invalid_payload`
    for one Store cannot read (a signed event is still only data: wrong types are refused
    here, never a 500 that the provider retries for days)."""
    try:
        return _normalized(event)
    except InvalidWebhookPayload:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise InvalidWebhookPayload(f"not a readable Stripe event: {exc!r:.120}") from None


def _normalized(event: Mapping[str, Any]) -> ProviderEvent:
    event_id = event["id"]
    event_type = event["type"]
    obj = event["data"]["object"]
    if not isinstance(event_id, str) or not isinstance(event_type, str):
        raise InvalidWebhookPayload("an event's `id` and `type` are strings")
    if not isinstance(obj, Mapping):
        raise InvalidWebhookPayload("`data.object` is not an object")
    created = _timestamp(event.get("created")) or datetime.now(UTC)
    kind = HANDLED.get(event_type, "ignored")
    base: dict[str, Any] = {
        "provider": "stripe",
        "id": event_id,
        "type": event_type,
        "kind": kind,
        "created": created,
    }
    if kind == "ignored":
        return ProviderEvent(**base)
    if event_type.startswith("checkout.session."):
        return _session_event(base, obj)
    if event_type.startswith("invoice."):
        return _invoice_event(base, obj)
    if kind == "dispute_updated":
        dispute = dispute_from_stripe(obj)
        return ProviderEvent(
            **base, dispute=dispute, amount=dispute.amount, currency=dispute.currency
        )
    if kind == "refund_updated":
        refund = refund_from_stripe(obj)
        return ProviderEvent(**base, refund=refund, amount=refund.amount, currency=refund.currency)
    subscription = subscription_from_stripe(obj)
    return ProviderEvent(
        **base,
        attempt_id=subscription.metadata.get("attempt_id"),
        order_id=subscription.metadata.get("order_id"),
        subscription=subscription,
    )


def _session_event(base: dict[str, Any], session: Mapping[str, Any]) -> ProviderEvent:
    metadata = _metadata(session.get("metadata"))
    currency = _currency(session.get("currency"))
    amount = _amount(session.get("amount_total"), currency, "amount_total")
    payment_status = session.get("payment_status")
    subscription_id = _id(session.get("subscription"))
    kind = base["kind"]
    paid = (kind == "checkout_completed" and payment_status in ("paid", "no_payment_required")) or (
        kind == "payment_succeeded"
    )
    if paid and (amount is None or currency is None):
        # Fail closed: money whose amount or currency is not said pays nothing. Stripe always
        # sends both; reconciliation reads the session itself if this was a real payment.
        raise InvalidWebhookPayload("a paid session without `amount_total` and `currency`")
    return ProviderEvent(
        **base,
        attempt_id=metadata.get("attempt_id"),
        order_id=metadata.get("order_id") or session.get("client_reference_id"),
        session_id=str(session.get("id")),
        paid=paid,
        payment_status=payment_status,
        amount=amount,
        currency=currency,
        provider_reference=_id(session.get("payment_intent"))
        or _id(session.get("invoice"))
        or str(session.get("id")),
        subscription=ProviderSubscription(id=subscription_id) if subscription_id else None,
        reason="async_payment_failed" if kind == "payment_failed" else None,
    )


def _invoice_event(base: dict[str, Any], invoice: Mapping[str, Any]) -> ProviderEvent:
    # The invoice names its subscription under `parent` (API 2025-03-31 and later only).
    parent = (invoice.get("parent") or {}).get("subscription_details") or {}
    metadata = _metadata(parent.get("metadata"))
    subscription_id = _id(parent.get("subscription"))
    currency = _currency(invoice.get("currency"))
    field = "amount_paid" if base["kind"] == "invoice_paid" else "amount_due"
    amount = _amount(invoice.get(field), currency, field)
    if base["kind"] == "invoice_paid" and (amount is None or currency is None):
        raise InvalidWebhookPayload("a paid invoice without `amount_paid` and `currency`")
    ends: list[int] = [
        _whole(line["period"]["end"], "period.end")
        for line in ((invoice.get("lines") or {}).get("data") or [])
        if (line.get("period") or {}).get("end")
    ]
    return ProviderEvent(
        **base,
        attempt_id=metadata.get("attempt_id"),
        order_id=metadata.get("order_id"),
        paid=base["kind"] == "invoice_paid",
        amount=amount,
        currency=currency,
        provider_reference=str(invoice.get("id")),
        invoice_id=str(invoice.get("id")),
        billing_reason=invoice.get("billing_reason"),
        subscription=ProviderSubscription(id=subscription_id) if subscription_id else None,
        period_end=_timestamp(max(ends) if ends else invoice.get("period_end")),
        reason="invoice_payment_failed" if base["kind"] == "invoice_payment_failed" else None,
        hosted_invoice_url=_text(invoice.get("hosted_invoice_url")),
        next_payment_attempt=_timestamp(invoice.get("next_payment_attempt")),
    )


# Paid invoices asked for per subscription and reconciliation run: pages of 100, at most 5
# (a daily subscription over the look-back window; more waits for the next run).
INVOICE_PAGE, INVOICE_PAGES = 100, 5


class StripeProvider:
    """The `PaymentProvider` for Stripe."""

    name = "stripe"
    checkout_ttl = None  # Stripe's own session expiry (24 h), reported on the session

    def __init__(
        self,
        *,
        secret_key: str,
        webhook_secrets: Sequence[str],
        api_base: str | None = None,
        timeout_s: float = 20.0,
        max_network_retries: int = 2,
        webhook_tolerance_s: int = 300,
    ) -> None:
        self._http = stripe.HTTPXClient(timeout=timeout_s)
        self._client = stripe.StripeClient(
            secret_key,
            stripe_version=STRIPE_API_VERSION,
            base_addresses={"api": api_base.rstrip("/")} if api_base else None,
            http_client=self._http,
            max_network_retries=max_network_retries,
        )
        if not webhook_secrets:
            raise ValueError("at least one webhook signing secret is needed")
        self._webhook_secrets = tuple(webhook_secrets)
        self._tolerance_s = webhook_tolerance_s
        self._versions_reported: set[str] = set()

    # -- checkout ---------------------------------------------------------------------------

    def check_limits(self, currency: str, lines: Sequence[PaymentLine]) -> None:
        check_stripe_limits(currency, lines)

    async def ensure_customer(self, customer: ProviderCustomer) -> str | None:
        address = customer.address
        params: dict[str, Any] = {
            "name": customer.name,
            "email": customer.email,
            "address": {
                key: value
                for key, value in {
                    "line1": address.line1,
                    "line2": address.line2,
                    "city": address.city,
                    "postal_code": address.postal_code,
                    "state": address.state,
                    "country": address.country,
                }.items()
                if value
            },
            "metadata": {"store_customer_id": customer.customer_id, "owner": customer.owner_key},
        }
        key = f"store-customer-{customer.customer_id}"
        tax_ids = stripe_tax_ids(customer.vat_id, address.country)
        if customer.vat_id:
            params["metadata"]["vat_id"] = customer.vat_id
        if not tax_ids:
            return await self._create_customer(params, key)
        try:
            return await self._create_customer({**params, "tax_id_data": tax_ids}, key)
        except PaymentRejected as exc:
            if getattr(exc.__cause__, "code", None) != "tax_id_invalid":
                raise
            # Stripe checks each type's format more strictly than Store does: the customer is
            # created without it (it stays in the metadata) rather than blocking the checkout.
            log.warning(
                "stripe.tax_id_refused", customer_id=customer.customer_id, type=tax_ids[0]["type"]
            )
            return await self._create_customer(params, f"{key}-without-tax-id")

    async def _create_customer(self, params: dict[str, Any], key: str) -> str:
        created = await self._call(
            self._client.v1.customers.create_async(
                params,  # type: ignore[arg-type]
                options={"idempotency_key": key},
            )
        )
        return str(created.id)

    def checkout_params(self, request: CheckoutRequest) -> dict[str, Any]:
        """The Checkout Session parameters of one attempt (pure, for tests and logs)."""
        currency = request.currency.lower()
        metadata = {
            "order_id": request.order_id,
            "attempt_id": request.attempt_id,
            "order_number": request.order_number,
        }
        line_items = []
        for line in request.lines:
            price_data: dict[str, Any] = {
                "currency": currency,
                "unit_amount": to_stripe_amount(line.unit_amount, request.currency),
                "product_data": {"name": line.name, "metadata": {"pricing_id": line.pricing_id}},
            }
            if line.interval:
                price_data["recurring"] = {
                    "interval": line.interval,
                    "interval_count": line.interval_count,
                }
            line_items.append({"quantity": line.quantity, "price_data": price_data})
        params: dict[str, Any] = {
            "mode": request.mode,
            "line_items": line_items,
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "client_reference_id": request.order_id,
            "metadata": metadata,
        }
        if request.provider_customer_id:
            params["customer"] = request.provider_customer_id
        if request.mode == "payment":
            intent: dict[str, Any] = {"metadata": metadata}
            suffix = statement_descriptor_suffix(request.statement_descriptor)
            if suffix:
                # Card charges take a suffix to the account's prefix; a full descriptor is
                # refused for cards.
                intent["statement_descriptor_suffix"] = suffix
            if request.shipping is not None:
                # Radar and the receipt see where the goods go (the amount is a line item).
                intent["shipping"] = shipping_details(request.shipping)
            params["payment_intent_data"] = intent
        else:
            params["subscription_data"] = {
                "metadata": metadata,
                "description": f"Order {request.order_number}",
            }
        return params

    async def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        session = await self._call(
            self._client.v1.checkout.sessions.create_async(
                self.checkout_params(request),  # type: ignore[arg-type]
                options={"idempotency_key": request.idempotency_key},
            )
        )
        if not session.url:
            raise PaymentRejected("Stripe opened a checkout session without a hosted page")
        return CheckoutSession(
            session_id=str(session.id),
            url=str(session.url),
            expires_at=_timestamp(getattr(session, "expires_at", None)),
        )

    async def refund(self, request: RefundRequest) -> ProviderRefund:
        if request.provider_subscription_id:
            # The extra checkout started a subscription: end it now, or it bills again.
            await self._end_subscription(request.provider_subscription_id)
        intent = await self._payment_intent_of(request.provider_reference)
        params: RefundCreateParams = {
            "payment_intent": intent,
            "metadata": {
                "refund_id": request.refund_id,
                "attempt_id": request.attempt_id,
                "reason": request.reason,
            },
        }
        if request.partial:
            try:
                params["amount"] = to_stripe_amount(request.amount, request.currency)
            except ValueError as exc:  # a part Stripe cannot express (e.g. BHD 1.235)
                raise PaymentRejected(str(exc)) from None
        if request.reason in STRIPE_REFUND_REASON:
            params["reason"] = STRIPE_REFUND_REASON[request.reason]
        try:
            refund = await self._call(
                self._client.v1.refunds.create_async(
                    params,
                    # One key per Store refund: a retry after a lost answer gets the same refund.
                    options={"idempotency_key": request.idempotency_key},
                )
            )
        except PaymentRejected as exc:
            cause = exc.__cause__
            if getattr(cause, "code", None) == "charge_already_refunded":
                # Refunded already (an earlier try whose answer was lost after the key expired,
                # or the Dashboard): the money is back, which is all this refund wanted.
                log.info("stripe.charge_already_refunded", refund_id=request.refund_id)
                return ProviderRefund(id=None, status="succeeded")
            if getattr(cause, "http_status", None) == 409:
                # The same key in flight elsewhere (a webhook and reconciliation at once): the
                # other call makes the refund; this one asks again later.
                raise ProviderUnavailable("Stripe is busy with this refund; retry.") from exc
            raise
        return refund_from_stripe(refund.to_dict())

    async def billing_portal(
        self, *, provider_customer_id: str | None, subscription_id: str, return_url: str
    ) -> str:
        if provider_customer_id is None:
            raise PaymentRejected("This subscription has no Stripe customer to manage.")
        session = await self._call(
            self._client.v1.billing_portal.sessions.create_async(
                {"customer": provider_customer_id, "return_url": return_url}
            )
        )
        return str(session.url)

    async def refund_status(self, provider_refund_id: str) -> ProviderRefund:
        refund = await self._call(self._client.v1.refunds.retrieve_async(provider_refund_id))
        return refund_from_stripe(refund.to_dict())

    async def _end_subscription(self, subscription_id: str) -> None:
        """Cancel a subscription now; one that has already ended counts as done, so that a
        retried refund goes on to the money."""
        # No idempotency key: Stripe honours them on POST only, never on DELETE.
        try:
            await self._call(self._client.v1.subscriptions.cancel_async(subscription_id))
            return
        except PaymentRejected as exc:
            if getattr(exc.__cause__, "code", None) == "resource_missing":
                # Stripe answers a DELETE of a subscription that has ended (canceled by an
                # earlier try, or by Stripe) with 404 "No such subscription".
                log.info("stripe.subscription_already_ended", id=subscription_id)
                return
            refused = exc
        current = await self._call(self._client.v1.subscriptions.retrieve_async(subscription_id))
        if current.status not in SUBSCRIPTION_ENDED:
            raise refused
        log.info("stripe.subscription_already_ended", id=subscription_id, status=current.status)

    async def _payment_intent_of(self, reference: str | None) -> str:
        """The PaymentIntent behind a reference: a subscription's first invoice names it among
        its payments (the invoice has no `payment_intent` of its own in the pinned version)."""
        if reference and reference.startswith("in_"):
            invoice = await self._call(
                self._client.v1.invoices.retrieve_async(reference, {"expand": ["payments"]})
            )
            payments = invoice.payments.data if "payments" in invoice and invoice.payments else []
            for payment in sorted(payments, key=lambda p: not p.is_default):
                if payment.status == "paid" and payment.payment.type == "payment_intent":
                    intent = _id(payment.payment.payment_intent)
                    if intent:
                        return intent
            raise PaymentRejected(f"Stripe shows no paid payment of invoice {reference}")
        if not reference or not reference.startswith("pi_"):
            raise PaymentRejected(f"Stripe cannot refund {reference!r}: no payment intent")
        return reference

    async def checkout_status(self, session_id: str) -> ProviderEvent | None:
        session = await self._call(self._client.v1.checkout.sessions.retrieve_async(session_id))
        obj = session.to_dict()
        status, payment_status = obj.get("status"), obj.get("payment_status")
        if status == "open":
            return None  # still payable
        outcome = str(status)
        event_type, kind = {
            "expired": ("checkout.session.expired", "checkout_expired"),
            "complete": ("checkout.session.completed", "checkout_completed"),
        }[outcome]
        if status == "complete" and payment_status == "unpaid":
            # A delayed method (SEPA Debit, bank transfer): processing until its payment
            # settles; a payment intent that gave up means the debit failed.
            outcome = "processing"
            if await self._async_payment_failed(obj):
                event_type, kind, outcome = (
                    "checkout.session.async_payment_failed",
                    "payment_failed",
                    "failed",
                )
        base: dict[str, Any] = {
            "provider": "stripe",
            # One reconciliation per session outcome, whatever replica or run finds it.
            "id": f"reconcile_{session_id}_{outcome}",
            "type": event_type,
            "kind": kind,
            "created": datetime.now(UTC),
        }
        event = _session_event(base, obj)
        if event.subscription is not None and event.subscription.current_period_end is None:
            fetched = await self._fetch_subscription(event.subscription.id)
            if fetched is not None:
                event = _with_subscription(event, fetched)
        return event

    async def paid_invoices(
        self, provider_subscription_id: str, *, since: datetime
    ) -> Sequence[ProviderEvent]:
        events: list[ProviderEvent] = []
        params: dict[str, Any] = {
            "subscription": provider_subscription_id,
            "status": "paid",
            "created": {"gt": int(since.timestamp())},
            "limit": INVOICE_PAGE,
        }
        for _ in range(INVOICE_PAGES):
            page = await self._call(self._client.v1.invoices.list_async(params))  # type: ignore[arg-type]
            invoices = [invoice.to_dict() for invoice in page.data]
            for invoice in invoices:
                paid_at = (invoice.get("status_transitions") or {}).get("paid_at")
                base: dict[str, Any] = {
                    "provider": "stripe",
                    # One reconciliation per invoice, whatever replica or run finds it.
                    "id": f"reconcile_{invoice['id']}_paid",
                    "type": "invoice.paid",
                    "kind": "invoice_paid",
                    "created": _timestamp(paid_at or invoice.get("created")) or datetime.now(UTC),
                }
                events.append(_invoice_event(base, invoice))
            if not page.has_more or not invoices:
                break
            params["starting_after"] = invoices[-1]["id"]
        return events

    async def _async_payment_failed(self, session: Mapping[str, Any]) -> bool:
        """Whether a completed, unpaid session's payment intent stopped trying (its debit was
        refused). A subscription's first invoice is left to its webhooks."""
        intent_id = _id(session.get("payment_intent"))
        if intent_id is None:
            return False
        intent = await self._call(self._client.v1.payment_intents.retrieve_async(intent_id))
        return str(intent.to_dict().get("status")) in ("requires_payment_method", "canceled")

    async def expire_checkout(self, session_id: str) -> None:
        try:
            await self._client.v1.checkout.sessions.expire_async(
                session_id, options={"idempotency_key": f"store-expire-{session_id}"}
            )
        except stripe.StripeError as exc:
            # Already completed or expired: nothing left to close.
            log.info("stripe.expire_skipped", session_id=session_id, error=str(exc))

    # -- subscriptions ----------------------------------------------------------------------

    async def cancel_subscription(
        self, provider_subscription_id: str, *, idempotency_key: str
    ) -> ProviderSubscription | None:
        updated = await self._call(
            self._client.v1.subscriptions.update_async(
                provider_subscription_id,
                {"cancel_at_period_end": True},
                options={"idempotency_key": idempotency_key},
            )
        )
        return subscription_from_stripe(updated.to_dict())

    async def _fetch_subscription(self, subscription_id: str) -> ProviderSubscription | None:
        try:
            found = await self._client.v1.subscriptions.retrieve_async(subscription_id)
        except stripe.StripeError as exc:
            log.warning("stripe.subscription_fetch_failed", id=subscription_id, error=str(exc))
            return None
        return subscription_from_stripe(found.to_dict())

    # -- webhooks ---------------------------------------------------------------------------

    async def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        signature = headers.get(SIGNATURE_HEADER)
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidWebhookPayload("the body is not UTF-8") from None
        self._verify_signature(text, signature)
        _not_from_the_future(str(signature), self._tolerance_s)
        try:
            event = json.loads(payload)
        except ValueError:
            raise InvalidWebhookPayload("the body is not JSON") from None
        if not isinstance(event, dict):
            raise InvalidWebhookPayload("not a Stripe event")
        self._at_the_pinned_version(event)
        try:
            normalized = normalize_stripe_event(event)
        except InvalidWebhookPayload as exc:
            # Signed, so it came from Stripe (or a leaked secret): worth an operator's look.
            log.warning(
                "stripe.webhook_unreadable", event_id=str(event.get("id")), reason=exc.detail
            )
            raise
        if normalized.subscription is not None and (
            normalized.kind == "subscription_updated"
            or (
                normalized.kind == "checkout_completed"
                and normalized.subscription.current_period_end is None
            )
        ):
            # A session names its subscription only by id; its period comes from Stripe. An
            # update is applied as the subscription is now, not as the event's snapshot had it:
            # Stripe promises no order, and two updates in the same second (a cancel, then a
            # reactivation in the portal) cannot be ordered by their `created`. Without an
            # answer from Stripe, the snapshot and the timestamp check decide, as before.
            fetched = await self._fetch_subscription(normalized.subscription.id)
            if fetched is not None:
                normalized = _with_subscription(normalized, fetched)
        return normalized

    def _verify_signature(self, text: str, signature: str | None) -> None:
        """Signed with any of the endpoint secrets: a rolled secret and its successor, or a
        second endpoint during an API version upgrade, are accepted side by side."""
        refusal: stripe.SignatureVerificationError | None = None
        for secret in self._webhook_secrets:
            try:
                stripe.WebhookSignature.verify_header(text, signature, secret, self._tolerance_s)
                return
            except stripe.SignatureVerificationError as exc:
                refusal = refusal or exc
        assert refusal is not None
        raise InvalidSignature(f"Stripe-Signature refused: {refusal.user_message or refusal}")

    def _at_the_pinned_version(self, event: dict[str, Any]) -> None:
        """An event rendered at another API version has other shapes (an older `invoice.paid`
        names its subscription elsewhere): read as ours, it would be answered 200 and record
        nothing, and Stripe never retries a 200. Refused instead, so Stripe keeps retrying it
        for days while an operator sets the endpoint's version (docs/operations.md)."""
        version = event.get("api_version")
        if version == STRIPE_API_VERSION:
            return
        label = str(version)[:40]
        payments_metrics().versions_refused.labels(api_version=label).inc()
        if label not in self._versions_reported:
            self._versions_reported.add(label)
            log.error(
                "stripe.webhook_version_refused",
                api_version=label,
                pinned=STRIPE_API_VERSION,
                event_id=str(event.get("id")),
                fix=f"set the webhook endpoint's API version to {STRIPE_API_VERSION} in the "
                "Stripe Dashboard (or add an endpoint at that version and its secret to "
                "PAYMENTS_STRIPE_WEBHOOK_SECRET); Stripe retries the refused events",
            )
        raise UnsupportedApiVersion(
            f"This endpoint reads events at Stripe API version {STRIPE_API_VERSION}; "
            f"this one is rendered at {label}."
        )

    async def aclose(self) -> None:
        await self._http.close_async()

    # -- errors -----------------------------------------------------------------------------

    async def _call(self, request: Any) -> Any:
        try:
            return await request
        except (stripe.InvalidRequestError, stripe.CardError, stripe.IdempotencyError) as exc:
            log.warning("stripe.request_refused", error=str(exc), code=getattr(exc, "code", None))
            raise PaymentRejected(f"Stripe refused the request: {exc.user_message or exc}") from exc
        except (stripe.AuthenticationError, stripe.PermissionError) as exc:
            log.error("stripe.misconfigured", error=str(exc))
            raise ProviderUnavailable("The payment provider refused our credentials.") from exc
        except stripe.StripeError as exc:  # network, rate limit, Stripe outage
            log.warning("stripe.unavailable", error=str(exc))
            raise ProviderUnavailable("The payment provider is unavailable; retry.") from exc


def stripe_tax_ids(vat_id: str | None, country: str) -> list[dict[str, str]]:
    """The customer's VAT id as Stripe's `tax_id_data` (shown on its invoices and receipts):
    `eu_vat` in the EU (and for Northern Ireland's XI numbers), `gb_vat`, `ch_vat`, `no_vat`;
    none where Store does not know the type (the id then stays in the customer's metadata)."""
    if not vat_id:
        return []
    country = country.upper()
    kind: str | None = {"GB": "gb_vat", "CH": "ch_vat", "NO": "no_vat"}.get(country)
    if country in EU_COUNTRIES or (country == "GB" and vat_id.startswith("XI")):
        kind = "eu_vat"
    return [{"type": kind, "value": vat_id}] if kind else []


def _not_from_the_future(signature: str, tolerance_s: int) -> None:
    """The SDK refuses a signature older than the tolerance; one dated further ahead than the
    tolerance is refused too (a clock that far off, or a signature made for later)."""
    stamps = [
        part.partition("=")[2] for part in signature.split(",") if part.strip().startswith("t=")
    ]
    if not stamps or not stamps[0].strip().isdigit():
        raise InvalidSignature("Stripe-Signature has no timestamp")
    if int(stamps[0]) > time.time() + tolerance_s:
        raise InvalidSignature("Stripe-Signature is dated in the future")


def _with_subscription(event: ProviderEvent, subscription: ProviderSubscription) -> ProviderEvent:
    return replace(event, subscription=subscription)
