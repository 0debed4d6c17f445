"""What the orders service consumes: HANDLERS, bound by `Runtime.subscribe(service, HANDLERS)`.

Published (through the outbox, in the transaction of the change): `OrderCreated` by
`prepare_order`, `OrderPaid` by `mark_paid`, `OrderCanceled` by `cancel_order` — each once
per order; `OrderFulfilled` by `fulfil_order` — once per fulfilment.
`OrderBackordered` by `mark_paid` when the paid order's stock was no longer held and could
not be covered (once).
Consumed: `PaymentSucceeded` (set paid), `RefundSucceeded` and `RefundFailed` (keep the
order's refunds; the first final status wins), `DisputeOpened` and `DisputeClosed` (keep the
order's disputes; a closed one never reopens) and `AnonymousMerged` (re-own the shopper's
orders), `SubscriptionRenewed` (a paid renewal invoice becomes an order of its own, paid at
once, publishing `OrderCreated` and `OrderPaid` for it: services/orders/renewals.py).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from libs.contracts.envelope import Event
from libs.contracts.events import (
    AnonymousMerged,
    DisputeClosed,
    DisputeOpened,
    PaymentSucceeded,
    RefundFailed,
    RefundSucceeded,
    SubscriptionRenewed,
)
from libs.runtime.runtime import EventHandler
from services.orders.renewals import record_renewal
from services.orders.service import OrdersService

PUBLISHES = (
    "orders.order.created.v1",
    "orders.order.paid.v1",
    "orders.order.canceled.v1",
    "orders.order.backordered.v1",
    "orders.order.fulfilled.v1",
)


async def on_payment_succeeded(
    service: OrdersService, session: AsyncSession, payload: PaymentSucceeded
) -> None:
    await service.mark_paid(session=session, payment=payload)


async def on_refund_reported(
    service: OrdersService, session: AsyncSession, payload: RefundSucceeded | RefundFailed
) -> None:
    await service.record_refund(session=session, refund=payload)


async def on_dispute_reported(
    service: OrdersService, session: AsyncSession, payload: DisputeOpened | DisputeClosed
) -> None:
    await service.record_dispute(session=session, dispute=payload)


async def on_anonymous_merged(
    service: OrdersService, session: AsyncSession, payload: AnonymousMerged
) -> None:
    await service.anonymous_to_user(session=session, merged=payload)


async def on_subscription_renewed(
    service: OrdersService, session: AsyncSession, payload: SubscriptionRenewed
) -> None:
    await record_renewal(
        runtime=service.runtime, session=session, renewed=payload, now=service.clock()
    )


HANDLERS: dict[type[Event], EventHandler] = {
    PaymentSucceeded: on_payment_succeeded,
    RefundSucceeded: on_refund_reported,
    RefundFailed: on_refund_reported,
    DisputeOpened: on_dispute_reported,
    DisputeClosed: on_dispute_reported,
    AnonymousMerged: on_anonymous_merged,
    SubscriptionRenewed: on_subscription_renewed,
}
