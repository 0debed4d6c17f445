"""Disputes: a shopper's bank takes a payment back until the shop proves it was right.

Stripe reports a dispute with `charge.dispute.created`, moves it with `charge.dispute.updated`
and ends it with `charge.dispute.closed`, in any order and maybe more than once. Store keeps one
row per dispute and announces two facts, each once: `payments.dispute.opened.v1` the first
time it hears of one (even if that is its closing), then `payments.dispute.closed.v1` when it is
won, lost or closed. A closed dispute never changes again. The disputed payment is matched to
its attempt by the payment's reference (Stripe's PaymentIntent); one Store cannot match (a
renewal's invoice, a payment made outside Store) is still recorded and announced, without an
order.
"""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from libs.contracts.payments import DisputeOut
from libs.runtime.runtime import Runtime
from services.payments import publishes as facts
from services.payments.metrics import payments_metrics
from services.payments.provider import ProviderEvent
from services.payments.service import Clock, RepositoryFactory, new_id, utcnow
from services.payments.store import DisputeRecord, PaymentsRepository, SqlPaymentsRepository

log = structlog.get_logger(__name__)


class DisputeService:
    """Records what the provider says about disputes and announces when one opens and ends."""

    def __init__(
        self,
        *,
        runtime: Runtime,
        clock: Clock = utcnow,
        repository: RepositoryFactory = SqlPaymentsRepository,
    ) -> None:
        self.runtime = runtime
        self.clock = clock
        self.repository = repository

    async def list(self, *, open_only: bool = False, limit: int = 100) -> list[DisputeOut]:
        """Disputes, newest first (optionally only those still open)."""
        async with self.runtime.transaction() as session:
            found = await self.repository(session).list_disputes(open_only=open_only, limit=limit)
        return [DisputeOut.model_validate(vars(dispute)) for dispute in found]

    async def apply_event(
        self, repo: PaymentsRepository, session: AsyncSession, event: ProviderEvent
    ) -> None:
        """A provider's webhook about a dispute (inside the event's own transaction)."""
        news = event.dispute
        assert news is not None
        now = self.clock()
        attempt = (
            await repo.attempt_by_reference(news.payment_reference)
            if news.payment_reference
            else None
        )
        dispute, opened = await repo.add_dispute(
            id=new_id(),
            provider=event.provider,
            provider_dispute_id=news.id,
            attempt_id=attempt.id if attempt else None,
            order_id=attempt.order_id if attempt else None,
            amount=news.amount,
            currency=news.currency,
            reason=news.reason,
            status=news.status,
            evidence_due_by=news.evidence_due_by,
            opened_at=event.created,
            closed_at=None,
            updated_at=now,
        )
        if opened:
            await self._announce_opened(session, dispute)
            if not news.closed:
                return  # recorded just now, as the provider reports it
        closed_at = event.created if news.closed else None
        if not await repo.update_dispute(
            dispute.id,
            now,
            status=news.status,
            evidence_due_by=news.evidence_due_by or dispute.evidence_due_by,
            closed_at=closed_at,
        ):
            return  # closed already: a late or repeated report changes nothing
        if closed_at is not None:
            await self._announce_closed(session, dispute, news.status, closed_at)

    async def _announce_opened(self, session: AsyncSession, dispute: DisputeRecord) -> None:
        log.error(
            "payments.dispute_opened",
            dispute_id=dispute.id,
            provider_dispute_id=dispute.provider_dispute_id,
            order_id=dispute.order_id,
            amount=dispute.amount,
            currency=dispute.currency,
            reason=dispute.reason,
            evidence_due_by=dispute.evidence_due_by.isoformat()
            if dispute.evidence_due_by
            else None,
            action="answer with evidence in the Stripe Dashboard before evidence_due_by",
        )
        payments_metrics().disputes_opened.labels(reason=dispute.reason).inc()
        await self.runtime.record(session, facts.dispute_opened(dispute))

    async def _announce_closed(
        self, session: AsyncSession, dispute: DisputeRecord, status: str, closed_at: datetime
    ) -> None:
        log.warning(
            "payments.dispute_closed",
            dispute_id=dispute.id,
            order_id=dispute.order_id,
            status=status,
            amount=dispute.amount,
            currency=dispute.currency,
        )
        payments_metrics().disputes_closed.labels(status=status).inc()
        await self.runtime.record(
            session, facts.dispute_closed(dispute, status=status, closed_at=closed_at)
        )
