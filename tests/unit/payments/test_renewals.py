"""Renewal invoices on the payments side: a proration is a renewal too, announced with why it
was billed and when it was paid; one that charged nothing is no renewal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from services.payments.bootstrap import PaymentsDeps
from tests.unit.payments.builders import (
    RENEWED,
    FakeClock,
    provider_event,
    published,
    running_deps,
    settings_for,
    user,
)
from tests.unit.payments.test_service import open_attempt


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def deps(tmp_path: Path, clock: FakeClock) -> AsyncIterator[PaymentsDeps]:
    async with running_deps(settings_for(tmp_path), clock=clock) as ready:
        yield ready


async def subscribed(deps: PaymentsDeps) -> tuple[str, str]:
    data, attempt_id = await open_attempt(deps, recurring=True)
    await deps.payments.dev_checkout_action(attempt_id=attempt_id, action="pay")
    return data.owner.id, f"dev_sub_{attempt_id}"


@pytest.mark.parametrize("reason", ["subscription_cycle", "subscription_update"])
async def test_a_paid_invoice_of_a_running_subscription_is_announced_once_with_its_reason(
    deps: PaymentsDeps, clock: FakeClock, reason: str
) -> None:
    owner_id, provider_subscription = await subscribed(deps)
    paid_at = clock.now + timedelta(days=3)
    invoice = provider_event(
        "invoice_paid",
        billing_reason=reason,
        subscription=provider_subscription,
        invoice_id="in_42",
        amount=700,
        currency="EUR",
        created=paid_at,
        paid=True,
    )
    assert await deps.payments.record_renewal(invoice) is True
    # Found again by reconciliation (another event id): nothing new.
    assert (
        await deps.payments.record_renewal(
            provider_event(**{**invoice.__dict__, "id": "reconcile_in_42_paid"})
        )
        is False
    )

    [renewed] = await published(deps, RENEWED)
    assert (renewed["billing_reason"], renewed["amount"]) == (reason, 700)
    assert renewed["renewed_at"].startswith(paid_at.isoformat()[:19])
    [after] = await deps.subscriptions.list_subscriptions(principal=user(owner_id))
    assert after.renewals == 1


async def test_a_proration_that_charged_nothing_is_no_renewal(deps: PaymentsDeps) -> None:
    owner_id, provider_subscription = await subscribed(deps)
    credit = provider_event(
        "invoice_paid",
        billing_reason="subscription_update",
        subscription=provider_subscription,
        invoice_id="in_credit",
        amount=0,
        currency="EUR",
        paid=True,
    )
    assert await deps.payments.record_renewal(credit) is False
    assert await published(deps, RENEWED) == []
    [after] = await deps.subscriptions.list_subscriptions(principal=user(owner_id))
    assert after.renewals == 0
