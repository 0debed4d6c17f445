"""Renewals reconciled on real PostgreSQL: replicas share the subscriptions (each asked once
per lease), every paid invoice no webhook brought is recorded once, and asking again records
nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import cast

import pytest

from services.payments.dev_provider import DevProvider
from services.payments.provider import PaymentProvider, ProviderEvent
from services.payments.tables import subscriptions
from tests.integration.payments.test_payments_postgres import add_customer
from tests.unit.payments.builders import (
    RENEWED,
    provider_event,
    published,
    running_deps,
    settings_for,
    start_payment,
    user,
)

pytestmark = pytest.mark.integration


class InvoicingProvider(DevProvider):
    """The dev provider, where every subscription had one renewal whose webhook was lost."""

    def __init__(self) -> None:
        super().__init__(checkout_url=lambda attempt_id: f"http://shop.test/pay/{attempt_id}")
        self.asked: list[str] = []

    async def paid_invoices(
        self, provider_subscription_id: str, *, since: datetime
    ) -> Sequence[ProviderEvent]:
        self.asked.append(provider_subscription_id)
        await asyncio.sleep(0.01)  # a provider call takes a while: replicas overlap
        first = provider_event(
            "invoice_paid",
            billing_reason="subscription_create",  # the first order's: not a renewal
            subscription=provider_subscription_id,
            invoice_id=f"in_first_{provider_subscription_id}",
            amount=2500,
            currency="EUR",
            paid=True,
        )
        renewal = provider_event(
            "invoice_paid",
            id=f"reconcile_in_{provider_subscription_id}_paid",
            billing_reason="subscription_cycle",
            subscription=provider_subscription_id,
            invoice_id=f"in_{provider_subscription_id}",
            amount=2500,
            currency="EUR",
            paid=True,
        )
        return [renewal, first]  # newest first, as Stripe lists them


async def test_replicas_record_each_lost_renewal_once(tmp_path: Path, pg_database_url: str) -> None:
    settings = settings_for(tmp_path, database_url=pg_database_url, reconcile_after_s=3600)
    providers = [InvoicingProvider() for _ in range(3)]
    async with contextlib.AsyncExitStack() as stack:
        replicas = [
            await stack.enter_async_context(
                running_deps(settings, providers={"dev": cast(PaymentProvider, provider)})
            )
            for provider in providers
        ]
        shopper = user()
        customer_id = await add_customer(replicas[0], shopper)
        for _ in range(6):
            data = start_payment(owner=shopper.owner, customer_id=customer_id, recurring=True)  # type: ignore[arg-type]
            payment, _ = await replicas[0].payments.start_payment(data=data)
            await replicas[0].payments.dev_checkout_action(
                attempt_id=payment.attempt_id, action="pay"
            )

        runs = await asyncio.gather(*(r.reconciler.reconcile() for r in replicas for _ in range(2)))

        asked = [sub for provider in providers for sub in provider.asked]
        assert len(asked) == len(set(asked)) == 6
        assert sum(run.subscriptions_checked for run in runs) == 6
        assert sum(run.renewals_recorded for run in runs) == 6
        assert sum(run.errors for run in runs) == 0
        renewed = await published(replicas[0], RENEWED)
        assert len({r["invoice_reference"] for r in renewed}) == len(renewed) == 6

        # The leases are over: asked again, every invoice is known already.
        async with replicas[0].runtime.transaction() as session:
            await session.execute(subscriptions.update().values(renewals_checked_at=None))
        again = await asyncio.gather(*(r.reconciler.reconcile() for r in replicas))
        assert sum(run.subscriptions_checked for run in again) == 6
        assert sum(run.renewals_recorded for run in again) == 0
        assert len(await published(replicas[0], RENEWED)) == 6
