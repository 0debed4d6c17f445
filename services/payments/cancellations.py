"""An order was canceled: nobody may pay it any more, and money that reached it goes back.

Orders cancels only unpaid orders, but payments may have taken the money before it hears of the
cancel (the two race). So, when `orders.order.canceled.v1` arrives, in one transaction:
- the order is marked canceled here too: a new attempt is refused (409 `order_canceled`), and a
  payment that completes later is refunded (`paid_after_canceled`, see `_pay_attempt`);
- its unpaid and processing attempts are canceled (a debit already on its way cannot be called
  back: when its money arrives it is refunded);
- an attempt that already paid it is refunded in full (`paid_after_canceled`).
After the commit the open checkouts are closed at the provider and the refund is sent (both
also happen without it: a checkout expires by itself, reconciliation sends pending refunds).
"""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from libs.contracts.events import OrderCanceled
from services.payments.payments import PaymentService
from services.payments.service import new_id

log = structlog.get_logger(__name__)

REASON = "paid_after_canceled"


async def order_canceled(
    payments: PaymentService, session: AsyncSession, canceled: OrderCanceled
) -> None:
    """Close the canceled order for payment; refund what already paid it (once)."""
    repo = payments.repository(session)
    now = payments.clock()
    order = await repo.lock_order(canceled.order_id, order_number=canceled.number, now=now)
    assert order is not None
    if order.canceled_at is not None:
        return  # heard before (the inbox makes this rare: a second cancel event)
    await repo.set_order_canceled(canceled.order_id, now)
    closed = [
        (provider, session_id)
        for provider, session_id in await repo.cancel_open_attempts(
            canceled.order_id, now, reason="order canceled"
        )
        if session_id
    ]
    refund_id = None
    if order.paid_attempt_id is not None:
        attempt = await repo.get_attempt(order.paid_attempt_id)
        assert attempt is not None
        log.warning(
            "payments.paid_order_canceled",
            order_id=canceled.order_id,
            attempt_id=attempt.id,
            detail="the order was canceled while its payment landed: the money goes back",
        )
        await repo.update_attempt(attempt.id, now, refund_required=True, refund_reason=REASON)
        refund = await repo.add_refund(
            id=new_id(),
            attempt_id=attempt.id,
            order_id=attempt.order_id,
            provider=attempt.provider,
            provider_reference=attempt.provider_reference,
            amount=attempt.total,
            currency=attempt.currency,
            reason=REASON,
            created_at=now,
        )
        refund_id = refund.id

    async def after() -> None:
        await payments.expire_sessions(closed)
        if refund_id is not None:
            await payments.send_refund(refund_id=refund_id)

    payments.runtime.after_commit(session, after)
    log.info(
        "payments.order_canceled",
        order_id=canceled.order_id,
        closed_checkouts=len(closed),
        refunded=refund_id is not None,
    )
