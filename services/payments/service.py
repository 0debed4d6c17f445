"""What the payments services share: the clock, ids, records -> DTOs, ownership checks.

The verbs live by role: `customers.CustomerService`, `payments.PaymentService`,
`subscriptions.SubscriptionService`, `refunds.RefundService`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from libs.contracts.common import Owner, Principal
from libs.contracts.payments import (
    CustomerOut,
    PaymentAttemptOut,
    PaymentOut,
    RefundLineIn,
    RefundOut,
    SubscriptionOut,
)
from services.payments.domain import IdentityRequired, NotAMember
from services.payments.store import (
    AttemptRecord,
    CustomerRecord,
    PaymentsRepository,
    RefundRecord,
    SubscriptionRecord,
)

Clock = Callable[[], datetime]
# Opens the repository of one transaction; the SQL adapter unless a test swaps it.
RepositoryFactory = Callable[[AsyncSession], PaymentsRepository]


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


# --- records -> DTOs -------------------------------------------------------------------------


def customer_out(customer: CustomerRecord) -> CustomerOut:
    details = customer.details
    return CustomerOut(
        id=customer.id,
        is_default=customer.is_default,
        name=details.name,
        email=str(details.email),
        address=details.address,
        vat_id=details.vat_id,
        organization_id=customer.organization_id,
        owner=customer.owner,
    )


def payment_out(attempt: AttemptRecord) -> PaymentOut:
    return PaymentOut(
        attempt_id=attempt.id,
        status=attempt.status,
        checkout_url=attempt.checkout_url if attempt.status == "unpaid" else None,
    )


def attempt_out(attempt: AttemptRecord) -> PaymentAttemptOut:
    return PaymentAttemptOut(
        attempt_id=attempt.id,
        status=attempt.status,
        checkout_url=attempt.checkout_url if attempt.status == "unpaid" else None,
        order_id=attempt.order_id,
        order_number=attempt.order_number,
        provider=attempt.provider,
        mode=attempt.mode,
        total=attempt.total,
        currency=attempt.currency,
        refund_required=attempt.refund_required,
        refund_reason=attempt.refund_reason,
        failure_reason=attempt.failure_reason,
        created_at=attempt.created_at,
        paid_at=attempt.paid_at,
    )


def refund_out(refund: RefundRecord) -> RefundOut:
    return RefundOut(
        id=refund.id,
        attempt_id=refund.attempt_id,
        order_id=refund.order_id,
        provider=refund.provider,
        amount=refund.amount,
        currency=refund.currency,
        reason=refund.reason,
        status=refund.status,
        provider_refund_id=refund.provider_refund_id,
        last_error=refund.last_error,
        failure_reason=refund.failure_reason,
        tries=refund.tries,
        next_try_at=refund.next_try_at,
        created_at=refund.created_at,
        updated_at=refund.updated_at,
        actor=refund.actor,
        note=refund.note,
        lines=[RefundLineIn.model_validate(line) for line in refund.lines]
        if refund.lines
        else None,
    )


def subscription_out(subscription: SubscriptionRecord, renewals: int = 0) -> SubscriptionOut:
    return SubscriptionOut(
        id=subscription.id,
        status=subscription.status,
        order_id=subscription.order_id,
        current_period_end=subscription.current_period_end,
        cancel_at_period_end=subscription.cancel_at_period_end,
        created_at=subscription.created_at,
        owner=subscription.owner,
        customer_id=subscription.customer_id,
        interval=subscription.interval,
        interval_count=subscription.interval_count,
        amount=subscription.amount,
        currency=subscription.currency,
        canceled_at=subscription.canceled_at,
        ended_at=subscription.ended_at,
        renewals=renewals,
    )


def require_owner(principal: Principal | None) -> Owner:
    """The owner of the caller's things; 401 without a user or an anonymous shopper."""
    owner = principal.owner if principal is not None else None
    if owner is None:
        raise IdentityRequired("Log in, or act as an anonymous shopper.")
    return owner


def require_member(principal: Principal | None, organization_id: str) -> Owner:
    """The organization as an owner, for one of its members only (403 otherwise)."""
    require_owner(principal)
    assert principal is not None
    if not principal.user_id or organization_id not in principal.orgs:
        raise NotAMember(f"You are not a member of organization {organization_id!r}.")
    return Owner(kind="organization", id=organization_id)
