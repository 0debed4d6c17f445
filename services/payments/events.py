"""What the payments service publishes (records -> contract events) and what it consumes."""

from __future__ import annotations

from datetime import datetime

from libs.contracts.envelope import Event
from libs.contracts.events import (
    AnonymousMerged,
    CustomerChanged,
    CustomerCreated,
    PaymentExpired,
    PaymentFailed,
    PaymentSucceeded,
    SubscriptionActivated,
    SubscriptionCanceled,
    SubscriptionRenewed,
)
from services.payments.store import AttemptRecord, CustomerRecord, SubscriptionRecord


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


def subscription_activated(subscription: SubscriptionRecord) -> SubscriptionActivated:
    return SubscriptionActivated(
        subscription_id=subscription.id,
        order_id=subscription.order_id,
        owner=subscription.owner,
        status=subscription.status,
        current_period_end=subscription.current_period_end,
    )


def subscription_renewed(
    subscription: SubscriptionRecord,
    *,
    amount: int,
    currency: str,
    period_end: datetime | None,
    invoice: str,
) -> SubscriptionRenewed:
    return SubscriptionRenewed(
        subscription_id=subscription.id,
        order_id=subscription.order_id,
        amount=amount,
        currency=currency,
        current_period_end=period_end,
        invoice_reference=invoice,
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


# Consumed events -> the method of `CustomerService` that handles them (bound in bootstrap).
SUBSCRIPTIONS: dict[type[Event], str] = {AnonymousMerged: "anonymous_to_user"}
