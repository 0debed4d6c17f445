"""The operator's use cases, each a composition of service calls (as StoreInteractor's are)."""

from __future__ import annotations

import uuid

from gateway.clients import Clients
from libs.contracts.payments import OperatorRefundIn, RefundLineIn, RefundOut
from libs.contracts.store import AdminRefundIn, AdminRefundOut


def admin_refund_out(refund: RefundOut) -> AdminRefundOut:
    return AdminRefundOut(
        id=refund.id,
        amount=refund.amount,
        currency=refund.currency,
        status=refund.status,
        reason=refund.reason,
        note=refund.note,
        actor=refund.actor,
        created_at=refund.created_at,
    )


class AdminInteractor:
    """The admin API's use cases."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    async def refund_order(
        self, *, actor: str, order_id: str, body: AdminRefundIn, idempotency_key: str | None
    ) -> AdminRefundOut:
        """Refund part or all of a paid order; payments decides, under the order's lock."""
        refund = await self.clients.payments.refund_order(
            order_id,
            OperatorRefundIn(
                amount=body.amount,
                reason=body.reason,
                lines=[
                    RefundLineIn(pricing_id=x.pricing_id, quantity=x.quantity) for x in body.lines
                ]
                if body.lines
                else None,
                # The caller's key goes down too: payments dedupes even once the gateway's
                # replay store has forgotten it. Without one, every request is a new refund.
                idempotency_key=idempotency_key or f"gateway-{uuid.uuid4()}",
                actor=actor,
            ),
        )
        return admin_refund_out(refund)
