"""Operator refunds: an operator sends some or all of an order's money back.

The decision is taken under the order's payment row lock (`FOR UPDATE` on PostgreSQL; SQLite
serializes writers), so concurrent requests see each other's refunds: the sum of the paid
attempt's pending and succeeded refunds never exceeds what it charged (409
`refund_exceeds_paid` otherwise). Each request is recorded once per order and idempotency key;
the refund is then sent like any other (`refunds.RefundService.send`) and followed by its
webhooks and reconciliation.
"""

from __future__ import annotations

import hashlib
import json

import structlog

from libs.contracts.payments import OperatorRefundIn, RefundOut
from libs.runtime.runtime import Runtime
from services.payments.domain import OrderNotPaid, RefundKeyReused, order_lines, plan_refund
from services.payments.refunds import RefundService
from services.payments.service import Clock, RepositoryFactory, new_id, refund_out, utcnow
from services.payments.store import PaymentsRepository, RefundRecord, SqlPaymentsRepository

log = structlog.get_logger(__name__)

OPERATOR = "operator"


def request_hash(data: OperatorRefundIn) -> str:
    """The digest of what was asked (not who asked): the same key with another one is refused."""
    asked = {
        "amount": data.amount,
        "reason": data.reason,
        "lines": [[line.pricing_id, line.quantity] for line in data.lines or []],
    }
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()


def refunded_lines(refunds: list[RefundRecord]) -> dict[str, int]:
    """The units of each line that refunds still going or gone back have taken."""
    units: dict[str, int] = {}
    for refund in refunds:
        if refund.counts:
            for line in refund.lines or []:
                pricing_id = str(line["pricing_id"])
                units[pricing_id] = units.get(pricing_id, 0) + int(line["quantity"])
    return units


class OperatorRefundService:
    """The refunds an operator asks for."""

    def __init__(
        self,
        *,
        runtime: Runtime,
        refunds: RefundService,
        clock: Clock = utcnow,
        repository: RepositoryFactory = SqlPaymentsRepository,
    ) -> None:
        self.runtime = runtime
        self.refunds = refunds
        self.clock = clock
        self.repository = repository

    async def refund_order(
        self, *, order_id: str, data: OperatorRefundIn
    ) -> tuple[RefundOut, bool]:
        """Refund part or all of an order's paid attempt; True when this call recorded it."""
        digest = request_hash(data)
        async with self.runtime.transaction() as session:
            repo = self.repository(session)
            refund, created = await self._decide(repo, order_id, data, digest)
        if created:
            log.info(
                "payments.operator_refund",
                refund_id=refund.id,
                order_id=order_id,
                amount=refund.amount,
                currency=refund.currency,
                actor=data.actor,
            )
            # After commit, as every refund: the provider's key is the refund's id.
            refund = await self.refunds.send(refund_id=refund.id) or refund
        return refund_out(refund), created

    async def _decide(
        self, repo: PaymentsRepository, order_id: str, data: OperatorRefundIn, digest: str
    ) -> tuple[RefundRecord, bool]:
        # The lock every refund of the order is decided under: the sum below cannot go stale.
        order = await repo.lock_order(order_id)
        existing = await repo.refund_by_key(order_id, data.idempotency_key)
        if existing is not None:
            if existing.request_hash != digest:
                raise RefundKeyReused(
                    f"The idempotency key {data.idempotency_key!r} was first used for another "
                    "refund of this order; use a new key."
                )
            return existing, False
        if order is None or order.paid_attempt_id is None:
            raise OrderNotPaid(f"Order {order_id} is not paid: there is nothing to refund.")
        attempt = await repo.get_attempt(order.paid_attempt_id)
        assert attempt is not None
        refunds = await repo.refunds_of_attempt(attempt.id)
        lines = [(line.pricing_id, line.quantity) for line in data.lines] if data.lines else None
        amount = plan_refund(
            paid=attempt.total,
            refunded=sum(refund.amount for refund in refunds if refund.counts),
            amount=data.amount,
            lines=lines,
            # Attempts made before the order's lines were kept: their charged lines.
            order=attempt.order_lines or order_lines(attempt.lines),
            refunded_lines=refunded_lines(refunds),
        )
        now = self.clock()
        refund = await repo.add_refund(
            id=new_id(),
            attempt_id=attempt.id,
            order_id=order_id,
            provider=attempt.provider,
            provider_reference=attempt.provider_reference,
            amount=amount,
            currency=attempt.currency,
            reason=OPERATOR,
            idempotency_key=data.idempotency_key,
            actor=data.actor,
            note=data.reason,
            request_hash=digest,
            lines=[{"pricing_id": p, "quantity": q} for p, q in lines] if lines else None,
            created_at=now,
        )
        return refund, True
