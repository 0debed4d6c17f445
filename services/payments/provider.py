"""The payment provider port and the provider-neutral shapes that cross it.

Adapters: `DevProvider` (dev_provider.py, no outside service) and `StripeProvider`
(stripe_provider.py, the official SDK). Whatever a provider reports — a verified Stripe
webhook or a click on the dev checkout page — becomes one `ProviderEvent`, and the service
applies every `ProviderEvent` through the same code path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol

from libs.contracts.payments import Address, PaymentLine, ShippingAddress
from services.payments.domain import CheckoutMode

EventKind = Literal[
    "checkout_completed",  # the shopper finished the checkout; `paid` says if money arrived
    "payment_succeeded",  # a delayed payment method settled
    "payment_failed",  # declined, or a delayed payment method failed
    "checkout_expired",  # the checkout closed without payment
    "invoice_paid",  # a subscription invoice was paid (first one or a renewal)
    "invoice_payment_failed",
    "invoice_action_required",  # the bank wants the shopper to confirm an invoice's payment
    "subscription_updated",
    "subscription_deleted",
    "refund_updated",  # a refund's status changed at the provider (pending, succeeded, failed)
    "dispute_updated",  # a payment is disputed, or its dispute moved on or closed
    "ignored",  # a verified event Store does not act on
]


@dataclass(frozen=True)
class ProviderCustomer:
    """What a provider learns about a Store customer."""

    customer_id: str
    name: str
    email: str
    address: Address
    vat_id: str | None
    owner_key: str


@dataclass(frozen=True)
class CheckoutRequest:
    """Everything a provider needs to open a hosted checkout for one attempt."""

    attempt_id: str
    order_id: str
    order_number: str
    mode: CheckoutMode
    currency: str
    lines: Sequence[PaymentLine]
    success_url: str
    cancel_url: str
    statement_descriptor: str | None = None
    provider_customer_id: str | None = None
    expires_at: datetime | None = None
    shipping: ShippingAddress | None = None  # where the order goes, for the payment's record

    @property
    def idempotency_key(self) -> str:
        # Derived from the attempt: a retried request can only ever open the same session.
        return f"store-checkout-{self.attempt_id}"


@dataclass(frozen=True)
class CheckoutSession:
    session_id: str
    url: str
    expires_at: datetime | None = None


@dataclass(frozen=True)
class ProviderSubscription:
    """A subscription as the provider sees it."""

    id: str
    status: str | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool | None = None
    canceled_at: datetime | None = None
    ended_at: datetime | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


RefundStatus = Literal["pending", "succeeded", "failed", "canceled"]


@dataclass(frozen=True)
class ProviderRefund:
    """A refund as the provider sees it; `id` is None when the provider only said that the
    money had been refunded already."""

    id: str | None
    status: RefundStatus
    failure_reason: str | None = None
    store_refund_id: str | None = None  # Store's refund id, from the provider's metadata
    amount: int | None = None  # ISO 4217 minor units
    currency: str | None = None
    payment_reference: str | None = None  # the refunded payment (Stripe: its PaymentIntent)


@dataclass(frozen=True)
class ProviderDispute:
    """A dispute as the provider sees it; `payment_reference` names the disputed payment the
    way attempts record it (Stripe: its PaymentIntent)."""

    id: str
    status: str
    reason: str
    amount: int  # ISO 4217 minor units
    currency: str
    payment_reference: str | None
    evidence_due_by: datetime | None = None
    closed: bool = False


@dataclass(frozen=True)
class ProviderEvent:
    """A verified, normalized provider event; `id` makes its handling idempotent."""

    provider: str
    id: str
    type: str  # the provider's own name, e.g. checkout.session.completed
    kind: EventKind
    created: datetime
    attempt_id: str | None = None
    order_id: str | None = None
    session_id: str | None = None
    paid: bool = False
    payment_status: str | None = None
    amount: int | None = None  # ISO 4217 minor units
    currency: str | None = None
    provider_reference: str | None = None  # payment intent, invoice...
    subscription: ProviderSubscription | None = None
    invoice_id: str | None = None
    billing_reason: str | None = None
    period_end: datetime | None = None
    reason: str | None = None
    refund: ProviderRefund | None = None
    dispute: ProviderDispute | None = None
    hosted_invoice_url: str | None = None  # where the shopper pays an invoice or fixes the card
    next_payment_attempt: datetime | None = None


@dataclass(frozen=True)
class RefundRequest:
    """Send `amount` of one attempt's money back (the payment named by `provider_reference`)."""

    refund_id: str
    attempt_id: str
    provider_reference: str | None
    amount: int
    currency: str
    reason: str
    provider_subscription_id: str | None = None
    # An operator's refund names its amount; an automatic one sends back whatever of the
    # payment is still there (a part refunded in the Dashboard meanwhile is not asked twice).
    partial: bool = False

    @property
    def idempotency_key(self) -> str:
        # One refund per Store refund: a retry can never send the money back twice.
        return f"store-refund-{self.refund_id}"


class PaymentProvider(Protocol):
    """Opens hosted checkouts, verifies what the provider reports, manages subscriptions."""

    name: str

    @property
    def checkout_ttl(self) -> timedelta | None:
        """How long Store keeps a checkout open; None: the provider decides (and reports it)."""

    def check_limits(self, currency: str, lines: Sequence[PaymentLine]) -> None:
        """Raise a 422 problem when the provider cannot charge these lines (amounts, counts,
        intervals)."""

    async def ensure_customer(self, customer: ProviderCustomer) -> str | None:
        """The provider's id of this customer, created now if needed (None: not used)."""

    async def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        """Open a hosted checkout session (idempotent per attempt)."""

    async def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        """Verify a webhook and normalize it; raise InvalidSignature when it is not genuine."""

    async def cancel_subscription(
        self, provider_subscription_id: str, *, idempotency_key: str
    ) -> ProviderSubscription | None:
        """Cancel at the end of the current period."""

    async def expire_checkout(self, session_id: str) -> None:
        """Close an open checkout session so that it cannot be paid any more (best effort)."""

    async def refund(self, request: RefundRequest) -> ProviderRefund:
        """Refund a payment in full (cancelling its subscription, if any): the refund as the
        provider took it (`succeeded`, or `pending` until it settles). Raises PaymentRejected
        when the provider refuses it for good, ProviderUnavailable when it may work later."""

    async def refund_status(self, provider_refund_id: str) -> ProviderRefund:
        """How a refund the provider accepted stands now (a lost webhook, or one to wait for)."""

    async def billing_portal(
        self, *, provider_customer_id: str | None, subscription_id: str, return_url: str
    ) -> str:
        """A link where the customer changes the card, pays what is due or cancels."""

    async def checkout_status(self, session_id: str) -> ProviderEvent | None:
        """What the provider says about a session now, as an event to settle it by (None:
        still open, or nothing to learn); used when a webhook may have been lost."""

    async def paid_invoices(
        self, provider_subscription_id: str, *, since: datetime
    ) -> Sequence[ProviderEvent]:
        """The subscription's paid invoices created after `since`, newest first, each as the
        `invoice_paid` event that settles it (used when a renewal's webhook may have been
        lost; applying one twice changes nothing)."""

    async def aclose(self) -> None: ...
