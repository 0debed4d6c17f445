"""The payments service on SQLite: attempts, provider events in any order, subscriptions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from libs.contracts.common import Principal
from libs.contracts.events import AnonymousMerged
from libs.contracts.payments import CreateBillingIn, StartPaymentIn
from libs.runtime.problems import ProblemError
from services.payments.bootstrap import PaymentsDeps
from services.payments.dev_provider import DevProvider
from services.payments.domain import PaymentRejected, ProviderUnavailable
from services.payments.provider import (
    CheckoutRequest,
    CheckoutSession,
    PaymentProvider,
    ProviderRefund,
    ProviderSubscription,
    RefundRequest,
)
from tests.unit.payments.builders import (
    ACTIVATED,
    CANCELED,
    EXPIRED,
    FAILED,
    FLAGGED,
    REFUNDED,
    RENEWED,
    SUCCEEDED,
    FakeClock,
    anonymous,
    billing,
    provider_event,
    published,
    running_deps,
    settings_for,
    start_payment,
    user,
)


class ScriptedProvider(DevProvider):
    """The dev provider, with checkout creation failing on demand and calls recorded."""

    def __init__(self) -> None:
        super().__init__(checkout_url=lambda attempt_id: f"http://shop.test/pay/{attempt_id}")
        self.failures: list[Exception] = []
        self.requests: list[CheckoutRequest] = []
        self.expired: list[str] = []
        self.refunded: list[RefundRequest] = []
        self.refund_failures: list[Exception] = []

    async def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        self.requests.append(request)
        if self.failures:
            raise self.failures.pop(0)
        return await super().create_checkout(request)

    async def expire_checkout(self, session_id: str) -> None:
        self.expired.append(session_id)

    async def refund(self, request: RefundRequest) -> ProviderRefund:
        if self.refund_failures:
            raise self.refund_failures.pop(0)
        self.refunded.append(request)
        return await super().refund(request)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def provider() -> ScriptedProvider:
    return ScriptedProvider()


@pytest.fixture
async def deps(
    tmp_path: Path, clock: FakeClock, provider: ScriptedProvider
) -> AsyncIterator[PaymentsDeps]:
    async with running_deps(
        settings_for(tmp_path), providers={"dev": cast(PaymentProvider, provider)}, clock=clock
    ) as ready:
        yield ready


async def new_customer(
    deps: PaymentsDeps, owner_principal: Principal | None = None, **overrides: Any
) -> str:
    principal = owner_principal or user()
    created = await deps.customers.create_billing(
        principal=principal, data=CreateBillingIn.model_validate(billing(**overrides))
    )
    return created.id


async def attempt_status(deps: PaymentsDeps, attempt_id: str) -> str:
    return (await deps.payments.get_payment(attempt_id=attempt_id)).status


async def statuses(deps: PaymentsDeps, order_id: str) -> dict[str, str]:
    return {
        a.attempt_id: a.status for a in await deps.payments.get_order_payments(order_id=order_id)
    }


# --- starting payments -----------------------------------------------------------------------


async def test_a_retry_reuses_the_open_attempt_and_new_attempt_closes_it(
    deps: PaymentsDeps, provider: ScriptedProvider
) -> None:
    shopper = user()
    customer_id = await new_customer(deps, shopper)
    data = start_payment(owner=shopper.owner, customer_id=customer_id)  # type: ignore[arg-type]
    first, created = await deps.payments.start_payment(data=data)
    again, created_again = await deps.payments.start_payment(data=data)
    assert created and not created_again and again == first
    fresh, created_fresh = await deps.payments.start_payment(
        data=data.model_copy(update={"new_attempt": True})
    )
    assert created_fresh and fresh.attempt_id != first.attempt_id
    # One open payment per order: the previous checkout closed before the new one opened.
    assert await statuses(deps, data.order_id) == {
        first.attempt_id: "canceled",
        fresh.attempt_id: "unpaid",
    }
    assert provider.expired == [f"dev_cs_{first.attempt_id}"]
    with pytest.raises(ProblemError) as caught:
        await deps.payments.dev_checkout_action(attempt_id=first.attempt_id, action="pay")
    assert caught.value.code == "checkout_closed"


async def test_a_provider_outage_leaves_an_attempt_the_retry_completes(
    deps: PaymentsDeps, provider: ScriptedProvider
) -> None:
    shopper = user()
    data = start_payment(owner=shopper.owner, customer_id=await new_customer(deps, shopper))  # type: ignore[arg-type]
    provider.failures.append(ProviderUnavailable("down"))
    with pytest.raises(ProviderUnavailable):
        await deps.payments.start_payment(data=data)
    payment, created = await deps.payments.start_payment(data=data)
    assert not created and payment.checkout_url
    # Same attempt, same idempotency key: the provider can only open one session for it.
    keys = [r.idempotency_key for r in provider.requests]
    assert keys == [f"store-checkout-{payment.attempt_id}"] * 2


async def test_a_refused_checkout_fails_the_attempt(
    deps: PaymentsDeps, provider: ScriptedProvider
) -> None:
    shopper = user()
    data = start_payment(owner=shopper.owner, customer_id=await new_customer(deps, shopper))  # type: ignore[arg-type]
    provider.failures.append(PaymentRejected("Amount must be at least 0.50 EUR"))
    with pytest.raises(PaymentRejected):
        await deps.payments.start_payment(data=data)
    [attempt] = await deps.payments.get_order_payments(order_id=data.order_id)
    assert attempt.status == "failed" and "0.50" in (attempt.failure_reason or "")
    assert [p["attempt_id"] for p in await published(deps, FAILED)] == [attempt.attempt_id]


async def test_an_unknown_customer_or_currency_is_refused(deps: PaymentsDeps) -> None:
    shopper = user()
    with pytest.raises(ProblemError) as caught:
        await deps.payments.start_payment(
            data=start_payment(owner=shopper.owner, customer_id="nope")  # type: ignore[arg-type]
        )
    assert caught.value.code == "customer_not_found"
    with pytest.raises(ProblemError) as caught:
        await deps.payments.start_payment(
            data=start_payment(
                owner=shopper.owner,  # type: ignore[arg-type]
                customer_id=await new_customer(deps, shopper),
                currency="XTS",
            )
        )
    assert caught.value.code == "unknown_currency"


# --- provider events -------------------------------------------------------------------------


async def open_attempt(
    deps: PaymentsDeps, *, recurring: bool = False, order_id: str | None = None
) -> tuple[StartPaymentIn, str]:
    shopper = user()
    data = start_payment(
        owner=shopper.owner,  # type: ignore[arg-type]
        customer_id=await new_customer(deps, shopper),
        recurring=recurring,
        order_id=order_id,
    )
    payment, _ = await deps.payments.start_payment(data=data)
    return data, payment.attempt_id


async def test_the_same_event_applies_once(deps: PaymentsDeps) -> None:
    data, attempt_id = await open_attempt(deps)
    paid = provider_event("checkout_completed", attempt_id=attempt_id, paid=True)
    assert [await deps.payments.handle_provider_event(paid) for _ in range(3)] == [
        True,
        False,
        False,
    ]
    assert await attempt_status(deps, attempt_id) == "paid"
    assert [p["order_id"] for p in await published(deps, SUCCEEDED)] == [data.order_id]


async def test_late_events_never_leave_a_terminal_state(deps: PaymentsDeps) -> None:
    _, attempt_id = await open_attempt(deps)
    await deps.payments.handle_provider_event(
        provider_event("checkout_completed", attempt_id=attempt_id, paid=True)
    )
    await deps.payments.handle_provider_event(
        provider_event("checkout_expired", attempt_id=attempt_id)
    )
    await deps.payments.handle_provider_event(
        provider_event("payment_failed", attempt_id=attempt_id, reason="declined")
    )
    assert await attempt_status(deps, attempt_id) == "paid"
    assert await published(deps, EXPIRED) == [] and await published(deps, FAILED) == []


async def test_money_for_a_failed_attempt_is_refunded_not_paid(
    deps: PaymentsDeps, provider: ScriptedProvider
) -> None:
    _, attempt_id = await open_attempt(deps)
    await deps.payments.handle_provider_event(
        provider_event("payment_failed", attempt_id=attempt_id, reason="declined")
    )
    await deps.payments.handle_provider_event(
        provider_event("payment_succeeded", attempt_id=attempt_id, paid=True)
    )
    attempt = await deps.payments.get_payment(attempt_id=attempt_id)
    assert attempt.status == "failed" and attempt.refund_required
    assert attempt.refund_reason == "paid_after_failed"
    assert await published(deps, SUCCEEDED) == []
    assert [r.attempt_id for r in provider.refunded] == [attempt_id]
    [refund] = await deps.payments.list_refunds()
    assert (refund.status, refund.reason, refund.amount) == ("succeeded", "paid_after_failed", 2500)
    assert [p["attempt_id"] for p in await published(deps, REFUNDED)] == [attempt_id]


async def test_an_order_is_paid_once_and_money_on_a_closed_checkout_is_refunded(
    deps: PaymentsDeps, provider: ScriptedProvider
) -> None:
    data, first = await open_attempt(deps)
    second, _ = await deps.payments.start_payment(
        data=data.model_copy(update={"new_attempt": True})
    )
    await deps.payments.handle_provider_event(
        provider_event("checkout_completed", attempt_id=second.attempt_id, paid=True)
    )
    # A shopper who paid on the first checkout just before it closed: refunded, not paid.
    late = provider_event(
        "checkout_completed", attempt_id=first, paid=True, provider_reference="pay_1"
    )
    await deps.payments.handle_provider_event(late)
    await deps.payments.handle_provider_event(late)  # redelivered: still one refund
    attempts = {
        a.attempt_id: a for a in await deps.payments.get_order_payments(order_id=data.order_id)
    }
    assert await statuses(deps, data.order_id) == {first: "canceled", second.attempt_id: "paid"}
    assert attempts[first].refund_required
    assert attempts[first].refund_reason == "order_already_paid"
    assert [(r.attempt_id, r.provider_reference) for r in provider.refunded] == [(first, "pay_1")]
    assert [p["attempt_id"] for p in await published(deps, SUCCEEDED)] == [second.attempt_id]
    assert [p["attempt_id"] for p in await published(deps, REFUNDED)] == [first]
    with pytest.raises(ProblemError) as caught:
        await deps.payments.start_payment(data=data.model_copy(update={"new_attempt": True}))
    assert caught.value.code == "order_already_paid"


async def test_money_on_both_the_old_and_the_new_checkout_pays_once_and_refunds_once(
    deps: PaymentsDeps, provider: ScriptedProvider
) -> None:
    data, first = await open_attempt(deps)
    second, _ = await deps.payments.start_payment(
        data=data.model_copy(update={"new_attempt": True})
    )
    # Both arrive at once (the old checkout was paid while it was being closed).
    await asyncio.gather(
        deps.payments.handle_provider_event(
            provider_event("checkout_completed", attempt_id=first, paid=True, amount=2500)
        ),
        deps.payments.handle_provider_event(
            provider_event(
                "checkout_completed", attempt_id=second.attempt_id, paid=True, amount=2500
            )
        ),
    )
    assert await statuses(deps, data.order_id) == {first: "canceled", second.attempt_id: "paid"}
    assert [r.attempt_id for r in provider.refunded] == [first]
    assert len(await published(deps, SUCCEEDED)) == 1
    assert len(await published(deps, REFUNDED)) == 1


@pytest.mark.parametrize(
    ("reported", "reason"),
    [({"amount": 250}, "amount_mismatch"), ({"currency": "USD"}, "currency_mismatch")],
)
async def test_money_that_does_not_match_never_pays_and_is_flagged(
    deps: PaymentsDeps, provider: ScriptedProvider, reported: dict[str, Any], reason: str
) -> None:
    data, attempt_id = await open_attempt(deps)
    values = {"amount": 2500, "currency": "EUR", **reported}
    await deps.payments.handle_provider_event(
        provider_event("checkout_completed", attempt_id=attempt_id, paid=True, **values)
    )
    attempt = await deps.payments.get_payment(attempt_id=attempt_id)
    assert attempt.status == "canceled" and attempt.refund_reason == reason
    assert await published(deps, SUCCEEDED) == []
    [flagged] = await published(deps, FLAGGED)
    assert (flagged["reason"], flagged["expected_amount"]) == (reason, 2500)
    assert flagged["reported_amount"] == values["amount"]
    assert [r.attempt_id for r in provider.refunded] == [attempt_id]
    # The order is still unpaid: the shopper can pay it properly.
    payment, created = await deps.payments.start_payment(data=data)
    assert created and payment.status == "unpaid"


async def test_a_refund_the_provider_refused_stays_pending_until_retried(
    deps: PaymentsDeps, provider: ScriptedProvider
) -> None:
    _, attempt_id = await open_attempt(deps)
    await deps.payments.handle_provider_event(
        provider_event("payment_failed", attempt_id=attempt_id, reason="declined")
    )
    provider.refund_failures.append(ProviderUnavailable("down"))
    await deps.payments.handle_provider_event(
        provider_event("payment_succeeded", attempt_id=attempt_id, paid=True)
    )
    [pending] = await deps.payments.list_refunds(status="pending")
    assert pending.last_error and await published(deps, REFUNDED) == []
    done = await deps.payments.send_refund(refund_id=pending.id)
    again = await deps.payments.send_refund(refund_id=pending.id)
    assert done is not None and done.status == "succeeded" and again == done
    assert len(provider.refunded) == 1 and len(await published(deps, REFUNDED)) == 1


async def test_a_failed_first_invoice_does_not_fail_a_checkout_that_can_still_succeed(
    deps: PaymentsDeps,
) -> None:
    _, attempt_id = await open_attempt(deps, recurring=True)
    await deps.payments.handle_provider_event(
        provider_event(
            "invoice_payment_failed",
            attempt_id=attempt_id,
            billing_reason="subscription_create",
            subscription="sub_1",
        )
    )
    assert await attempt_status(deps, attempt_id) == "unpaid"
    assert await published(deps, FAILED) == []
    await deps.payments.handle_provider_event(
        provider_event("checkout_completed", attempt_id=attempt_id, paid=True, subscription="sub_1")
    )
    assert await attempt_status(deps, attempt_id) == "paid"


async def test_an_async_payment_is_processing_then_settles(deps: PaymentsDeps) -> None:
    data, attempt_id = await open_attempt(deps)
    completed = provider_event(
        "checkout_completed", attempt_id=attempt_id, paid=False, payment_status="unpaid"
    )
    await deps.payments.handle_provider_event(completed)
    assert await attempt_status(deps, attempt_id) == "processing"
    for new_attempt in (True, False):  # pay again, or a retried checkout: refused alike
        with pytest.raises(ProblemError) as caught:
            await deps.payments.start_payment(
                data=data.model_copy(update={"new_attempt": new_attempt})
            )
        assert (caught.value.status, caught.value.code) == (409, "payment_processing")
    assert await statuses(deps, data.order_id) == {attempt_id: "processing"}
    await deps.payments.handle_provider_event(
        provider_event("payment_succeeded", attempt_id=attempt_id, paid=True)
    )
    assert await attempt_status(deps, attempt_id) == "paid"
    assert len(await published(deps, SUCCEEDED)) == 1
    assert await published(deps, REFUNDED) == []


async def test_a_failed_async_payment_lets_the_shopper_pay_again(
    deps: PaymentsDeps, provider: ScriptedProvider
) -> None:
    data, attempt_id = await open_attempt(deps)
    await deps.payments.handle_provider_event(
        provider_event(
            "checkout_completed", attempt_id=attempt_id, paid=False, payment_status="unpaid"
        )
    )
    assert await attempt_status(deps, attempt_id) == "processing"
    await deps.payments.handle_provider_event(
        provider_event("payment_failed", attempt_id=attempt_id, reason="async_payment_failed")
    )
    assert await attempt_status(deps, attempt_id) == "failed"
    assert [p["attempt_id"] for p in await published(deps, FAILED)] == [attempt_id]
    again, created = await deps.payments.start_payment(
        data=data.model_copy(update={"new_attempt": True})
    )
    assert created and again.status == "unpaid"


async def test_a_processing_attempt_is_never_expired_or_reconciled_away(
    deps: PaymentsDeps, clock: FakeClock
) -> None:
    _, attempt_id = await open_attempt(deps)
    await deps.payments.handle_provider_event(
        provider_event(
            "checkout_completed", attempt_id=attempt_id, paid=False, payment_status="unpaid"
        )
    )
    await deps.payments.handle_provider_event(
        provider_event("checkout_expired", attempt_id=attempt_id)
    )
    clock.advance(days=2)
    for _ in range(3):
        await deps.reconciler.reconcile()
        clock.advance(hours=2)
    with pytest.raises(ProblemError):
        await deps.payments.dev_checkout_action(attempt_id=attempt_id, action="pay")
    assert await attempt_status(deps, attempt_id) == "processing"
    assert await published(deps, EXPIRED) == []


async def test_events_for_unknown_attempts_are_recorded_and_ignored(deps: PaymentsDeps) -> None:
    event = provider_event("checkout_completed", attempt_id="elsewhere", paid=True)
    assert await deps.payments.handle_provider_event(event) is True
    assert await deps.payments.handle_provider_event(event) is False
    assert await published(deps, SUCCEEDED) == []


async def test_a_dev_checkout_expires(deps: PaymentsDeps, clock: FakeClock) -> None:
    _, attempt_id = await open_attempt(deps)
    clock.advance(days=1, seconds=1)
    page = await deps.payments.dev_checkout_page(attempt_id=attempt_id)
    assert "expired" in page
    assert await attempt_status(deps, attempt_id) == "expired"
    assert [p["attempt_id"] for p in await published(deps, EXPIRED)] == [attempt_id]
    with pytest.raises(ProblemError) as caught:
        await deps.payments.dev_checkout_action(attempt_id=attempt_id, action="pay")
    assert caught.value.code == "checkout_closed"


# --- subscriptions ---------------------------------------------------------------------------


async def test_the_first_invoice_before_the_completed_checkout_activates_once(
    deps: PaymentsDeps, clock: FakeClock
) -> None:
    data, attempt_id = await open_attempt(deps, recurring=True)
    period_end = clock.now + timedelta(days=31)
    await deps.payments.handle_provider_event(
        provider_event(
            "invoice_paid",
            attempt_id=attempt_id,
            billing_reason="subscription_create",
            subscription="dev_sub_x",
            period_end=period_end,
            paid=True,
        )
    )
    await deps.payments.handle_provider_event(
        provider_event(
            "checkout_completed", attempt_id=attempt_id, paid=True, subscription="dev_sub_x"
        )
    )
    assert await attempt_status(deps, attempt_id) == "paid"
    assert len(await published(deps, SUCCEEDED)) == 1
    [activated] = await published(deps, ACTIVATED)
    assert activated["order_id"] == data.order_id and activated["status"] == "active"
    [subscription] = await deps.subscriptions.list_subscriptions(principal=user(data.owner.id))
    assert subscription.current_period_end == period_end


async def test_renewals_are_recorded_once_per_invoice(deps: PaymentsDeps, clock: FakeClock) -> None:
    data, attempt_id = await open_attempt(deps, recurring=True)
    await deps.payments.dev_checkout_action(attempt_id=attempt_id, action="pay")
    [subscription] = await deps.subscriptions.list_subscriptions(principal=user(data.owner.id))
    assert subscription.current_period_end == clock.now + timedelta(days=31)  # March
    renewal = provider_event(
        "invoice_paid",
        billing_reason="subscription_cycle",
        subscription=f"dev_sub_{attempt_id}",
        invoice_id="in_1",
        amount=2500,
        currency="EUR",
        period_end=clock.now + timedelta(days=61),
        paid=True,
    )
    await deps.payments.handle_provider_event(renewal)
    # The same invoice announced by a different event id: still one renewal.
    await deps.payments.handle_provider_event(
        provider_event(**{**renewal.__dict__, "id": "evt_other"})
    )
    [renewed] = await published(deps, RENEWED)
    assert renewed["invoice_reference"] == "in_1" and renewed["amount"] == 2500
    [after] = await deps.subscriptions.list_subscriptions(principal=user(data.owner.id))
    assert after.renewals == 1 and after.current_period_end == clock.now + timedelta(days=61)


async def test_stale_subscription_updates_are_ignored_and_cancel_is_announced_once(
    deps: PaymentsDeps, clock: FakeClock
) -> None:
    data, attempt_id = await open_attempt(deps, recurring=True)
    await deps.payments.dev_checkout_action(attempt_id=attempt_id, action="pay")
    sub_id = f"dev_sub_{attempt_id}"
    newer = provider_event(
        "subscription_updated",
        created=clock.now + timedelta(minutes=2),
        subscription=ProviderSubscription(id=sub_id, status="past_due"),
    )
    older = provider_event(
        "subscription_updated",
        created=clock.now + timedelta(minutes=1),
        subscription=ProviderSubscription(id=sub_id, status="active", cancel_at_period_end=True),
    )
    await deps.payments.handle_provider_event(newer)
    await deps.payments.handle_provider_event(older)
    principal = user(data.owner.id)
    [subscription] = await deps.subscriptions.list_subscriptions(principal=principal)
    assert subscription.status == "past_due" and not subscription.cancel_at_period_end
    canceled = await deps.subscriptions.cancel_subscription(
        principal=principal, subscription_id=subscription.id
    )
    assert canceled.cancel_at_period_end
    await deps.subscriptions.cancel_subscription(
        principal=principal, subscription_id=subscription.id
    )
    await deps.payments.handle_provider_event(
        provider_event(
            "subscription_deleted",
            created=clock.now + timedelta(days=40),
            subscription=ProviderSubscription(id=sub_id, status="canceled"),
        )
    )
    [ended] = await deps.subscriptions.list_subscriptions(principal=principal)
    assert ended.status == "canceled" and ended.ended_at is not None
    [announced] = await published(deps, CANCELED)
    assert announced["at_period_end"] is True
    with pytest.raises(ProblemError) as caught:
        await deps.payments.dev_renew(subscription_id=subscription.id)
    assert caught.value.code == "subscription_ended"


async def test_another_owners_subscription_is_not_found(deps: PaymentsDeps) -> None:
    _, attempt_id = await open_attempt(deps, recurring=True)
    await deps.payments.dev_checkout_action(attempt_id=attempt_id, action="pay")
    attempt = await deps.payments.get_payment(attempt_id=attempt_id)
    assert attempt.status == "paid"
    stranger = user()
    assert await deps.subscriptions.list_subscriptions(principal=stranger) == []


# --- merge -----------------------------------------------------------------------------------


async def merge(deps: PaymentsDeps, anonymous_id: str, user_id: str) -> None:
    async with deps.runtime.transaction() as session:
        await deps.customers.anonymous_to_user(
            session, AnonymousMerged(anonymous_id=anonymous_id, user_id=user_id)
        )


async def test_merge_keeps_the_users_own_default(deps: PaymentsDeps) -> None:
    shopper, member = anonymous(), user()
    anon_first = await new_customer(deps, shopper)
    await new_customer(deps, shopper)
    users_default = await new_customer(deps, member)
    data = start_payment(owner=shopper.owner, customer_id=anon_first, recurring=True)  # type: ignore[arg-type]
    payment, _ = await deps.payments.start_payment(data=data)
    await deps.payments.dev_checkout_action(attempt_id=payment.attempt_id, action="pay")

    await merge(deps, shopper.anonymous_id, member.user_id)  # type: ignore[arg-type]
    await merge(deps, shopper.anonymous_id, member.user_id)  # type: ignore[arg-type]

    mine = await deps.customers.get_customers_for_user(principal=member)
    assert len(mine) == 3 and [c.id for c in mine if c.is_default] == [users_default]
    assert await deps.customers.get_customers_for_user(principal=shopper) == []
    [subscription] = await deps.subscriptions.list_subscriptions(principal=member)
    assert subscription.owner == member.owner


async def test_merge_into_a_user_without_customers_keeps_the_anonymous_default(
    deps: PaymentsDeps,
) -> None:
    shopper, member = anonymous(), user()
    await new_customer(deps, shopper)
    second = await new_customer(deps, shopper)
    await deps.customers.set_default_customer(principal=shopper, customer_id=second)
    await merge(deps, shopper.anonymous_id, member.user_id)  # type: ignore[arg-type]
    mine = await deps.customers.get_customers_for_user(principal=member)
    assert [c.id for c in mine if c.is_default] == [second]


# --- reconciliation --------------------------------------------------------------------------


async def test_reconciliation_expires_a_dev_checkout_left_past_its_expiry(
    deps: PaymentsDeps, clock: FakeClock
) -> None:
    _, attempt_id = await open_attempt(deps)
    assert (await deps.reconciler.reconcile()).checked == 0  # young and open: left alone
    clock.advance(days=1, seconds=1)
    result = await deps.reconciler.reconcile()
    assert (result.checked, result.settled) == (1, 1)
    assert await attempt_status(deps, attempt_id) == "expired"
    assert [p["attempt_id"] for p in await published(deps, EXPIRED)] == [attempt_id]
    assert (await deps.reconciler.reconcile()).checked == 0
