"""Refunds: money that must not stay goes back, and Store follows it until the provider settles.

A refund is recorded `pending` in the transaction that decided the money goes back (a second
payment of a paid order, money after its checkout closed, a mismatch). After that commit Store
asks the provider for it, once per refund (the provider's idempotency key is the refund's id):
- the provider says `succeeded`: done; `payments.refund.succeeded.v1` is published;
- it says `pending` (Stripe's `pending` or `requires_action`): the refund waits for the
  provider's webhook, and reconciliation asks about it now and then in case that webhook is lost;
- it says `failed` or `canceled`, or refuses the request for good: `failed` (or `canceled`),
  with `payments.refund.failed.v1`, an error log and a metric an operator alerts on;
- the call fails in a way that may pass (an outage, a timeout, a busy key): reconciliation tries
  again after a wait that doubles from one minute to an hour, `PAYMENTS_REFUND_MAX_TRIES` times
  in all, then the refund is `failed` with `retries_exhausted`.
Whatever reports a refund's end first (the answer to the call, its webhook, reconciliation) wins;
the others change nothing, so each event is published once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from libs.contracts.payments import RefundOut
from libs.runtime.runtime import Runtime
from services.payments import publishes as facts
from services.payments.domain import PaymentRejected, ProviderUnavailable
from services.payments.metrics import payments_metrics
from services.payments.provider import (
    PaymentProvider,
    ProviderEvent,
    ProviderRefund,
    RefundRequest,
)
from services.payments.service import Clock, RepositoryFactory, new_id, refund_out, utcnow
from services.payments.store import PaymentsRepository, RefundRecord, SqlPaymentsRepository

log = structlog.get_logger(__name__)

# Refunds that send an amount back and leave the rest of the purchase as it is.
KEEP_SUBSCRIPTION = frozenset({"operator", "provider_dashboard"})
FIRST_WAIT = timedelta(minutes=1)
LONGEST_WAIT = timedelta(hours=1)


def retry_wait(tries: int) -> timedelta:
    """The wait after the `tries`-th call that did not settle a refund: 1, 2, 4 … 60 minutes."""
    return min(FIRST_WAIT * 2 ** max(tries - 1, 0), LONGEST_WAIT)


def check_wait(refund: RefundRecord, now: datetime) -> timedelta:
    """When to ask again about a refund the provider took but has not settled: after as long as
    it has been pending, between one minute and an hour (its webhook normally comes first)."""
    return min(max(now - refund.created_at, FIRST_WAIT), LONGEST_WAIT)


class RefundService:
    """Sends refunds to their provider and records how each one ends."""

    def __init__(
        self,
        *,
        runtime: Runtime,
        providers: Mapping[str, PaymentProvider],
        max_tries: int = 8,
        clock: Clock = utcnow,
        repository: RepositoryFactory = SqlPaymentsRepository,
    ) -> None:
        self.runtime = runtime
        self.providers = providers
        self.max_tries = max_tries
        self.clock = clock
        self.repository = repository

    async def send(self, *, refund_id: str) -> RefundRecord | None:
        """Ask the provider for a pending refund (or, once it took it, how it stands) and record
        the answer; a failure that may pass is tried again later by reconciliation."""
        async with self.runtime.transaction() as session:
            repo = self.repository(session)
            refund = await repo.get_refund(refund_id)
            attempt = await repo.get_attempt(refund.attempt_id) if refund else None
        if refund is None or attempt is None or refund.status != "pending":
            return refund
        provider = self.providers.get(refund.provider)
        try:
            if provider is None:
                raise ProviderUnavailable(f"The {refund.provider} provider is not configured.")
            if refund.provider_refund_id:
                answer = await provider.refund_status(refund.provider_refund_id)
            else:
                answer = await provider.refund(
                    RefundRequest(
                        refund_id=refund.id,
                        attempt_id=refund.attempt_id,
                        provider_reference=refund.provider_reference,
                        amount=refund.amount,
                        currency=refund.currency,
                        reason=refund.reason,
                        # An automatic refund undoes a checkout that must not stand, its
                        # subscription too; an operator's keeps the subscription running.
                        provider_subscription_id=None
                        if refund.reason in KEEP_SUBSCRIPTION
                        else attempt.provider_subscription_id,
                        partial=refund.reason in KEEP_SUBSCRIPTION,
                    )
                )
        except PaymentRejected as exc:
            # Refused for good: the same request, under the same key, gets the same answer.
            answer = ProviderRefund(
                id=refund.provider_refund_id, status="failed", failure_reason=f"refused: {exc}"
            )
        except Exception as exc:  # an outage or a timeout: kept pending, tried again later
            return await self._try_later(refund, exc)
        async with self.runtime.transaction() as session:
            return await self._record(self.repository(session), session, refund, answer)

    async def apply_event(
        self, repo: PaymentsRepository, session: AsyncSession, event: ProviderEvent
    ) -> None:
        """A provider's webhook about a refund (inside the event's own transaction)."""
        assert event.refund is not None
        refund = await repo.find_refund(
            refund_id=event.refund.store_refund_id, provider_refund_id=event.refund.id
        )
        if refund is None:
            refund = await self._dashboard_refund(repo, event)
            if refund is None:
                return
        await self._record(repo, session, refund, event.refund)

    async def _dashboard_refund(
        self, repo: PaymentsRepository, event: ProviderEvent
    ) -> RefundRecord | None:
        """A refund Store did not make (the provider's dashboard): recorded `pending` against
        the attempt whose payment it refunds, once per provider refund, then settled like
        Store's own. One that names no payment of Store's is logged and left alone."""
        news = event.refund
        assert news is not None
        attempt = (
            await repo.attempt_by_reference(news.payment_reference)
            if news.payment_reference
            else None
        )
        if attempt is None or news.id is None or news.amount is None:
            log.warning(
                "payments.refund_not_from_store",
                provider=event.provider,
                provider_refund_id=news.id,
                payment_reference=news.payment_reference,
                status=news.status,
            )
            return None
        # Under the order's lock, as an operator's refund: the sum they check includes it.
        await repo.lock_order(attempt.order_id)
        refund = await repo.add_refund(
            id=new_id(),
            attempt_id=attempt.id,
            order_id=attempt.order_id,
            provider=event.provider,
            provider_reference=attempt.provider_reference,
            provider_refund_id=news.id,
            amount=news.amount,
            currency=news.currency or attempt.currency,
            reason="provider_dashboard",
            idempotency_key=f"provider:{news.id}",
            # The provider made it: Store never sends it, only follows it.
            next_try_at=self.clock() + LONGEST_WAIT,
            created_at=event.created,
        )
        log.info(
            "payments.dashboard_refund",
            refund_id=refund.id,
            order_id=refund.order_id,
            provider_refund_id=news.id,
            amount=refund.amount,
        )
        return refund

    async def list(self, *, status: str | None = None, limit: int = 100) -> list[RefundOut]:
        """Refunds, newest first (optionally of one status)."""
        async with self.runtime.transaction() as session:
            found = await self.repository(session).list_refunds(status=status, limit=limit)
        return [refund_out(refund) for refund in found]

    async def _record(
        self,
        repo: PaymentsRepository,
        session: AsyncSession,
        refund: RefundRecord,
        answer: ProviderRefund,
    ) -> RefundRecord:
        """Write what the provider said; the events of an end go out with the change, once."""
        now = self.clock()
        provider_refund_id = answer.id or refund.provider_refund_id
        if answer.status == "pending":
            await repo.note_refund_accepted(
                refund.id, provider_refund_id, now, now + check_wait(refund, now)
            )
        elif await repo.settle_refund(
            refund.id,
            answer.status,
            now,
            provider_refund_id=provider_refund_id,
            failure_reason=None if answer.status == "succeeded" else answer.failure_reason,
        ):
            done = await repo.get_refund(refund.id)
            assert done is not None
            await self._announce(session, done, now)
            return done
        current = await repo.get_refund(refund.id)
        assert current is not None
        return current

    async def _announce(self, session: AsyncSession, refund: RefundRecord, now: datetime) -> None:
        if refund.status == "succeeded":
            log.info("payments.refund_succeeded", refund_id=refund.id, order_id=refund.order_id)
            await self.runtime.record(session, facts.payment_refunded(refund, at=now))
            await self.runtime.record(session, facts.refund_succeeded(refund, at=now))
            payments_metrics().refunds.labels(reason=refund.reason).inc()
            return
        log.error(
            "payments.refund_failed",
            refund_id=refund.id,
            order_id=refund.order_id,
            amount=refund.amount,
            currency=refund.currency,
            status=refund.status,
            failure_reason=refund.failure_reason,
            action="send the money back by hand (docs/operations.md, Failed refunds)",
        )
        await self.runtime.record(session, facts.refund_failed(refund, at=now))
        payments_metrics().refunds_failed.labels(reason=refund.reason, status=refund.status).inc()

    async def _try_later(self, refund: RefundRecord, exc: Exception) -> RefundRecord:
        now = self.clock()
        error = repr(exc)
        async with self.runtime.transaction() as session:
            repo = self.repository(session)
            tries = await repo.note_refund_error(
                refund.id, error, now, now + retry_wait(refund.tries + 1)
            )
            # Once the provider took it, only asking how it went fails: it is never given up.
            if tries is None or tries < self.max_tries or refund.provider_refund_id:
                log.warning(
                    "payments.refund_retry_later", refund_id=refund.id, tries=tries, error=error
                )
                current = await repo.get_refund(refund.id)
                assert current is not None
                return current
            gave_up = ProviderRefund(
                id=refund.provider_refund_id,
                status="failed",
                failure_reason=f"retries_exhausted: {error}"[:500],
            )
            return await self._record(repo, session, refund, gave_up)
