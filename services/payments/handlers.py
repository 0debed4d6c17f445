"""What payments consumes: HANDLERS, bound by `Runtime.subscribe(consumers, HANDLERS)`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from libs.contracts.envelope import Event
from libs.contracts.events import AnonymousMerged, OrderCanceled
from libs.runtime.runtime import EventHandler
from services.payments import cancellations

if TYPE_CHECKING:
    from services.payments.customers import CustomerService
    from services.payments.payments import PaymentService


@dataclass(frozen=True)
class Consumers:
    """The services the handlers reach."""

    customers: CustomerService
    payments: PaymentService


async def on_anonymous_merged(
    consumers: Consumers, session: AsyncSession, payload: AnonymousMerged
) -> None:
    """An anonymous shopper logged in: their customers become the user's."""
    await consumers.customers.anonymous_to_user(session, payload)


async def on_order_canceled(
    consumers: Consumers, session: AsyncSession, payload: OrderCanceled
) -> None:
    """An order was canceled: close it for payment, refund what already paid it."""
    await cancellations.order_canceled(consumers.payments, session, payload)


HANDLERS: dict[type[Event], EventHandler] = {
    AnonymousMerged: on_anonymous_merged,
    OrderCanceled: on_order_canceled,
}
