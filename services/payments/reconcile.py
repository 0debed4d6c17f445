"""Reconciliation: settle what a lost webhook left behind, retry refunds the provider has not
taken yet, and ask about those it has not settled.

A periodic run (every `PAYMENTS_RECONCILE_INTERVAL_S`, and `store payments reconcile` by hand)
asks the provider about attempts still unpaid past `PAYMENTS_RECONCILE_AFTER_S` or past their
expiry, and about processing ones (a delayed payment on its way) until they settle, and applies
what it says through `PaymentService.handle_provider_event` — the same path as a webhook.
Safe with several replicas: attempts and refunds are claimed with `FOR UPDATE SKIP LOCKED` and
leased until their next look, so no two runs ask about the same one. Each attempt has its own
next look, backed off with the looks so far (`Reconciler.backoff`), and never-looked-at
attempts come first, newest first: a lost webhook of a fresh session is found in the next run
however many abandoned checkouts wait.

Renewals too: each run takes a batch of running subscriptions in turn (never-asked first, each
leased for `RENEWALS_LEASE`) and asks the provider for its paid invoices created since
`RENEWALS_LOOK_BACK` before its newest recorded renewal (or since it started); each renewal
invoice goes through the same path as its webhook, which records it once per invoice — so a
lost `invoice.paid` becomes its renewal (and its order) in a later run, and asking again
records nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta

import structlog

from libs.contracts.payments import ReconcileOut
from libs.runtime.runtime import Runtime
from services.payments import dev_provider
from services.payments.metrics import payments_metrics
from services.payments.payments import RENEWAL_BILLING_REASONS, PaymentService
from services.payments.provider import PaymentProvider, ProviderEvent
from services.payments.service import Clock, RepositoryFactory, utcnow
from services.payments.store import AttemptRecord, SqlPaymentsRepository, SubscriptionRecord

log = structlog.get_logger(__name__)

MAX_BACKOFF = timedelta(hours=1)
ZERO = timedelta(0)
# How long a subscription waits for its next look at its invoices.
RENEWALS_LEASE = timedelta(hours=1)
# Invoices created this long before the newest recorded renewal are listed again: one paid
# late (Smart Retries, up to a month or two) still has its turn; those recorded change nothing.
RENEWALS_LOOK_BACK = timedelta(days=62)


class Reconciler:
    """Asks providers about attempts a webhook should have settled, and retries refunds."""

    def __init__(
        self,
        *,
        runtime: Runtime,
        payments: PaymentService,
        providers: Mapping[str, PaymentProvider],
        interval: timedelta,
        unpaid_after: timedelta,
        batch: int,
        clock: Clock = utcnow,
        repository: RepositoryFactory = SqlPaymentsRepository,
    ) -> None:
        self.runtime = runtime
        self.payments = payments
        self.providers = providers
        self.interval = interval
        self.unpaid_after = unpaid_after
        self.batch = batch
        self.clock = clock
        self.repository = repository

    async def reconcile(self) -> ReconcileOut:
        """One run: settle attempts the provider already decided, then retry pending refunds."""
        now = self.clock()
        async with self.runtime.transaction() as session:
            repo = self.repository(session)
            attempts = await repo.claim_attempts_to_reconcile(
                now=now,
                unpaid_before=now - self.unpaid_after,
                backoff=self.backoff,
                limit=self.batch,
            )
            refunds = await repo.claim_pending_refunds(
                before=now - self.interval, now=now, limit=self.batch
            )
            subscriptions = await repo.claim_subscriptions_to_reconcile(
                now=now, checked_before=now - RENEWALS_LEASE, limit=self.batch
            )
        settled = errors = 0
        for attempt in attempts:
            try:
                event = await self._ask(attempt)
                if event is not None and await self.payments.handle_provider_event(event):
                    settled += 1
                    payments_metrics().reconciled.labels(outcome=event.kind).inc()
            except Exception as exc:  # one provider hiccup must not stop the run
                errors += 1
                log.warning("payments.reconcile_failed", attempt_id=attempt.id, error=repr(exc))
        for refund in refunds:
            done = await self.payments.send_refund(refund_id=refund.id)
            # An error: a try that failed again, or a refund that failed for good in this run
            # (then an operator acts; it is not tried again, so the next run is clean).
            if (
                done is None
                or done.status in ("failed", "canceled")
                or (done.status == "pending" and done.last_error)
            ):
                errors += 1
        renewals = 0
        for subscription, newest in subscriptions:
            try:
                renewals += await self._renewals(subscription, newest)
            except Exception as exc:  # one provider hiccup must not stop the run
                errors += 1
                log.warning(
                    "payments.reconcile_renewals_failed",
                    subscription_id=subscription.id,
                    error=repr(exc),
                )
        result = ReconcileOut(
            checked=len(attempts),
            settled=settled,
            refunds_retried=len(refunds),
            errors=errors,
            subscriptions_checked=len(subscriptions),
            renewals_recorded=renewals,
        )
        if attempts or refunds or renewals:
            log.info("payments.reconciled", **result.model_dump())
        return result

    def backoff(self, looks: int) -> timedelta:
        """How long after its `looks`-th look an attempt is looked at again: one interval (at
        least a minute, the lease that keeps replicas apart), doubling, at most an hour. An
        abandoned checkout is asked about a handful of times until it expires, so a backlog of
        them costs each run little and never hides a fresh session."""
        lease = max(self.interval, timedelta(minutes=1))
        return min(lease * 2 ** min(looks, 16), max(lease, MAX_BACKOFF))

    async def _renewals(self, subscription: SubscriptionRecord, newest: datetime | None) -> int:
        """Record the subscription's paid renewal invoices that no webhook brought; how many."""
        provider = self.providers.get(subscription.provider)
        if provider is None:
            return 0
        since = (newest or subscription.created_at) - (RENEWALS_LOOK_BACK if newest else ZERO)
        recorded = 0
        invoices = await provider.paid_invoices(subscription.provider_subscription_id, since=since)
        # Oldest first, so the period moves on in the order the provider billed.
        for event in reversed(invoices):
            if event.billing_reason not in RENEWAL_BILLING_REASONS:
                continue  # the first invoice pays the first order: its checkout settles it
            if await self.payments.record_renewal(event):
                recorded += 1
                payments_metrics().reconciled.labels(outcome="renewal").inc()
        return recorded

    async def _ask(self, attempt: AttemptRecord) -> ProviderEvent | None:
        provider = self.providers.get(attempt.provider)
        if provider is None or attempt.provider_session_id is None:
            return None
        event = await provider.checkout_status(attempt.provider_session_id)
        now = self.clock()
        # A processing attempt is never abandoned: its checkout is done, its money on its way.
        if (
            event is None
            and attempt.status == "unpaid"
            and attempt.expires_at is not None
            and attempt.expires_at <= now
        ):
            if attempt.provider == "dev":  # the dev page has no one else to expire it
                return dev_provider.expired_event(
                    attempt_id=attempt.id, order_id=attempt.order_id, now=now
                )
        return event

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Reconcile every interval in the background while the service runs."""
        if self.interval <= timedelta(0):
            yield
            return
        task = asyncio.create_task(self._loop(), name="payments-reconcile")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval.total_seconds())
            try:
                await self.reconcile()
            except Exception as exc:  # a database outage: try again next period
                log.warning("payments.reconcile_run_failed", error=repr(exc))
