"""What the payments service publishes: its records turned into contract events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from libs.contracts.events import (
    CustomerChanged,
    CustomerCreated,
    DisputeClosed,
    DisputeOpened,
    PaymentExpired,
    PaymentFailed,
    PaymentFlagged,
    PaymentRefunded,
    PaymentSucceeded,
    RefundFailed,
    RefundSucceeded,
    SubscriptionActivated,
    SubscriptionCanceled,
    SubscriptionPastDue,
    SubscriptionRenewed,
)
from services.payments.provider import ProviderEvent
from services.payments.store import (
    AttemptRecord,
    CustomerRecord,
    DisputeRecord,
    RefundRecord,
    SubscriptionRecord,
)


def customer_created(customer: CustomerRecord) -> CustomerCreated:
    return CustomerCreated.model_validate(_customer_facts(customer))


def customer_changed(customer: CustomerRecord, *, deleted: bool = False) -> CustomerChanged:
    return CustomerChanged.model_validate({**_customer_facts(customer), "deleted": deleted})


def _customer_facts(customer: CustomerRecord) -> dict[str, object]:
    return {
        "customer_id": customer.id,
        "owner": customer.owner,
        "is_default": customer.is_default,
        "name": customer.details.name,
        "email": str(customer.details.email),
        "country": customer.details.address.country,
    }


def payment_succeeded(
    attempt: AttemptRecord, *, reference: str | None, at: datetime
) -> PaymentSucceeded:
    return PaymentSucceeded(
        attempt_id=attempt.id,
        order_id=attempt.order_id,
        amount=attempt.total,
        currency=attempt.currency,
        provider=attempt.provider,
        provider_reference=reference,
        succeeded_at=at,
    )


def payment_failed(attempt: AttemptRecord, *, reason: str | None) -> PaymentFailed:
    return PaymentFailed(attempt_id=attempt.id, order_id=attempt.order_id, reason=reason)


def payment_expired(attempt: AttemptRecord) -> PaymentExpired:
    return PaymentExpired(attempt_id=attempt.id, order_id=attempt.order_id)


def payment_refunded(refund: RefundRecord, *, at: datetime) -> PaymentRefunded:
    return PaymentRefunded(
        refund_id=refund.id,
        attempt_id=refund.attempt_id,
        order_id=refund.order_id,
        amount=refund.amount,
        currency=refund.currency,
        provider=refund.provider,
        provider_refund_id=refund.provider_refund_id,
        reason=refund.reason,
        refunded_at=at,
    )


def refund_succeeded(refund: RefundRecord, *, at: datetime) -> RefundSucceeded:
    return RefundSucceeded(**_refund_facts(refund), succeeded_at=at)


def refund_failed(refund: RefundRecord, *, at: datetime) -> RefundFailed:
    return RefundFailed(
        **_refund_facts(refund),
        status="canceled" if refund.status == "canceled" else "failed",
        failure_reason=refund.failure_reason,
        failed_at=at,
    )


def _refund_facts(refund: RefundRecord) -> dict[str, Any]:
    return {
        "refund_id": refund.id,
        "attempt_id": refund.attempt_id,
        "order_id": refund.order_id,
        "amount": refund.amount,
        "currency": refund.currency,
        "provider": refund.provider,
        "provider_refund_id": refund.provider_refund_id,
        "reason": refund.reason,
        "created_at": refund.created_at,
        "actor": refund.actor,
        "note": refund.note,
    }


def dispute_opened(dispute: DisputeRecord) -> DisputeOpened:
    return DisputeOpened(**_dispute_facts(dispute))


def dispute_closed(dispute: DisputeRecord, *, status: str, closed_at: datetime) -> DisputeClosed:
    return DisputeClosed(**{**_dispute_facts(dispute), "status": status}, closed_at=closed_at)


def _dispute_facts(dispute: DisputeRecord) -> dict[str, Any]:
    return {
        "dispute_id": dispute.id,
        "provider": dispute.provider,
        "provider_dispute_id": dispute.provider_dispute_id,
        "attempt_id": dispute.attempt_id,
        "order_id": dispute.order_id,
        "amount": dispute.amount,
        "currency": dispute.currency,
        "reason": dispute.reason,
        "status": dispute.status,
        "evidence_due_by": dispute.evidence_due_by,
        "opened_at": dispute.opened_at,
    }


def payment_flagged(attempt: AttemptRecord, event: ProviderEvent, *, reason: str) -> PaymentFlagged:
    return PaymentFlagged(
        attempt_id=attempt.id,
        order_id=attempt.order_id,
        reason=reason,
        expected_amount=attempt.total,
        expected_currency=attempt.currency,
        reported_amount=event.amount,
        reported_currency=event.currency,
        provider=attempt.provider,
        provider_reference=event.provider_reference,
    )


def subscription_activated(subscription: SubscriptionRecord) -> SubscriptionActivated:
    return SubscriptionActivated(
        subscription_id=subscription.id,
        order_id=subscription.order_id,
        owner=subscription.owner,
        status=subscription.status,
        current_period_end=subscription.current_period_end,
    )


def subscription_past_due(
    subscription: SubscriptionRecord, event: ProviderEvent, *, invoice: str, reason: str
) -> SubscriptionPastDue:
    return SubscriptionPastDue(
        subscription_id=subscription.id,
        order_id=subscription.order_id,
        owner=subscription.owner,
        invoice_reference=invoice,
        amount_due=event.amount if event.amount is not None else subscription.amount,
        currency=event.currency or subscription.currency,
        reason=reason,
        hosted_invoice_url=event.hosted_invoice_url,
        next_payment_attempt=event.next_payment_attempt,
        at=event.created,
    )


def subscription_renewed(
    subscription: SubscriptionRecord,
    *,
    amount: int,
    currency: str,
    period_end: datetime | None,
    invoice: str,
    billing_reason: str | None = None,
    renewed_at: datetime | None = None,
) -> SubscriptionRenewed:
    return SubscriptionRenewed(
        subscription_id=subscription.id,
        order_id=subscription.order_id,
        amount=amount,
        currency=currency,
        current_period_end=period_end,
        invoice_reference=invoice,
        billing_reason=billing_reason,
        renewed_at=renewed_at,
    )


def subscription_canceled(
    subscription: SubscriptionRecord, *, at_period_end: bool, at: datetime
) -> SubscriptionCanceled:
    return SubscriptionCanceled(
        subscription_id=subscription.id,
        order_id=subscription.order_id,
        at_period_end=at_period_end,
        canceled_at=at,
    )
