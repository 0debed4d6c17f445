"""What notifications consumes: HANDLERS, bound by `Runtime.subscribe(service, HANDLERS)`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from libs.contracts.envelope import Event
from libs.contracts.events import (
    AnonymousMerged,
    OrderCreated,
    OrderFulfilled,
    OrderPaid,
    PaymentFailed,
    RefundSucceeded,
    SubscriptionPastDue,
    SubscriptionRenewed,
)
from libs.runtime.runtime import EventHandler, delivering

if TYPE_CHECKING:
    from services.notifications.service import NotificationsService


def _event_id() -> str:
    return str(delivering().event_id)


async def on_order_created(
    service: NotificationsService, session: AsyncSession, event: OrderCreated
) -> None:
    """An order exists: remember its owner, for the payments' events about it."""
    await service.remember_order(session, order_id=event.order_id, owner=event.owner)


async def on_anonymous_merged(
    service: NotificationsService, session: AsyncSession, event: AnonymousMerged
) -> None:
    """A shopper logged in: their anonymous orders are the user's now."""
    await service.reown_orders(session, anonymous_id=event.anonymous_id, user_id=event.user_id)


async def on_order_paid(
    service: NotificationsService, session: AsyncSession, event: OrderPaid
) -> None:
    """The order confirmation."""
    await service.send_order_confirmation(session, event_id=_event_id(), event=event)


async def on_order_fulfilled(
    service: NotificationsService, session: AsyncSession, event: OrderFulfilled
) -> None:
    """The shipped message, one per fulfilment."""
    await service.send_shipped(session, event_id=_event_id(), event=event)


async def on_refund_succeeded(
    service: NotificationsService, session: AsyncSession, event: RefundSucceeded
) -> None:
    """The refund message."""
    await service.send_refund_issued(session, event_id=_event_id(), event=event)


async def on_payment_failed(
    service: NotificationsService, session: AsyncSession, event: PaymentFailed
) -> None:
    """The payment-failed message."""
    await service.send_payment_failed(session, event_id=_event_id(), event=event)


async def on_subscription_renewed(
    service: NotificationsService, session: AsyncSession, event: SubscriptionRenewed
) -> None:
    """The renewal-paid message."""
    await service.send_renewal_paid(session, event_id=_event_id(), event=event)


async def on_subscription_past_due(
    service: NotificationsService, session: AsyncSession, event: SubscriptionPastDue
) -> None:
    """The renewal-failed message, with the link to fix the card."""
    await service.send_renewal_failed(session, event_id=_event_id(), event=event)


HANDLERS: dict[type[Event], EventHandler] = {
    OrderCreated: on_order_created,
    AnonymousMerged: on_anonymous_merged,
    OrderPaid: on_order_paid,
    OrderFulfilled: on_order_fulfilled,
    RefundSucceeded: on_refund_succeeded,
    PaymentFailed: on_payment_failed,
    SubscriptionRenewed: on_subscription_renewed,
    SubscriptionPastDue: on_subscription_past_due,
}
