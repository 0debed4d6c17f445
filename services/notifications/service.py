"""NotificationsService: the verbs that turn events into the shopper's e-mails."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from libs.contracts.common import Owner
from libs.contracts.events import (
    OrderFulfilled,
    OrderPaid,
    PaymentFailed,
    RefundSucceeded,
    SubscriptionPastDue,
    SubscriptionRenewed,
)
from libs.contracts.orders import OrderOut
from libs.runtime.runtime import Runtime
from services.notifications import domain
from services.notifications.domain import Notice, OrderUnknown
from services.notifications.mailer import Mailer
from services.notifications.messages import MessageRenderer
from services.notifications.orders import OrdersSource
from services.notifications.repository import SentMessage, SqlOrderOwners, SqlSentMessages

log = structlog.get_logger(__name__)


class NotificationsService:
    """Sends one message per event it handles, and keeps the log of what it sent."""

    def __init__(
        self,
        *,
        runtime: Runtime,
        mailer: Mailer,
        renderer: MessageRenderer,
        orders: OrdersSource,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.runtime = runtime
        self.mailer = mailer
        self.renderer = renderer
        self.orders = orders
        self.clock = clock

    # --- the projection of order owners -------------------------------------------------------

    async def remember_order(self, session: AsyncSession, *, order_id: str, owner: Owner) -> None:
        """Note who owns an order: the payments' events about it do not say."""
        await SqlOrderOwners(session).remember(order_id=order_id, owner=owner, at=self.clock())

    async def reown_orders(self, session: AsyncSession, *, anonymous_id: str, user_id: str) -> None:
        """An anonymous shopper logged in: their orders are now the user's."""
        await SqlOrderOwners(session).reown(
            anonymous_id=anonymous_id, user_id=user_id, at=self.clock()
        )

    # --- the messages ---------------------------------------------------------------------------

    async def send_order_confirmation(
        self, session: AsyncSession, *, event_id: str, event: OrderPaid
    ) -> None:
        """The order confirmation: lines, shipping, tax, total and the order number."""
        await self.remember_order(session, order_id=event.order_id, owner=event.owner)
        order = await self._order(session, event.order_id)
        if order.renewal is not None:
            # A subscription's renewal order: the renewal-paid message is the one for it.
            log.info("notifications.skipped", reason="renewal_order", order_id=order.id)
            return
        await self._send(session, domain.order_paid_notice(event_id, event, order))

    async def send_shipped(
        self, session: AsyncSession, *, event_id: str, event: OrderFulfilled
    ) -> None:
        """A parcel left: the carrier, the tracking number and link."""
        await self.remember_order(session, order_id=event.order_id, owner=event.owner)
        order = await self._order(session, event.order_id)
        await self._send(session, domain.order_shipped_notice(event_id, event, order))

    async def send_refund_issued(
        self, session: AsyncSession, *, event_id: str, event: RefundSucceeded
    ) -> None:
        """Money reached the shopper again."""
        order = await self._order(session, event.order_id)
        await self._send(session, domain.refund_issued_notice(event_id, event, order))

    async def send_payment_failed(
        self, session: AsyncSession, *, event_id: str, event: PaymentFailed
    ) -> None:
        """A payment did not go through; the order can be paid again."""
        order = await self._order(session, event.order_id)
        if order.paid is not None:
            # Another attempt paid it meanwhile: telling the shopper it failed would mislead.
            log.info("notifications.skipped", reason="order_paid", order_id=order.id)
            return
        notice = domain.payment_failed_notice(
            event_id, event, order, shop_url=self.renderer.letterhead.shop_url
        )
        await self._send(session, notice)

    async def send_renewal_paid(
        self, session: AsyncSession, *, event_id: str, event: SubscriptionRenewed
    ) -> None:
        """A subscription's new period was charged."""
        order = await self._order(session, event.order_id)
        await self._send(session, domain.renewal_paid_notice(event_id, event, order))

    async def send_renewal_failed(
        self, session: AsyncSession, *, event_id: str, event: SubscriptionPastDue
    ) -> None:
        """A renewal could not be charged: the link to fix the card."""
        await self.remember_order(session, order_id=event.order_id, owner=event.owner)
        order = await self._order(session, event.order_id)
        await self._send(session, domain.renewal_failed_notice(event_id, event, order))

    async def list_sent_messages(
        self, *, limit: int, order_id: str | None = None, before: datetime | None = None
    ) -> list[SentMessage]:
        """The log of sent messages, newest first."""
        async with self.runtime.transaction() as session:
            return await SqlSentMessages(session).page(
                limit=limit, order_id=order_id, before=before
            )

    # --- plumbing -----------------------------------------------------------------------------

    async def _order(self, session: AsyncSession, order_id: str) -> OrderOut:
        owner = await SqlOrderOwners(session).owner_of(order_id)
        if owner is None:
            # Raised, not skipped: orders.order.created.v1 of it may still be on its way, and
            # the retry ladder brings this event back after it.
            raise OrderUnknown(f"order {order_id} is not known yet")
        return await self.orders.get_order(owner=owner, order_id=order_id)

    async def _send(self, session: AsyncSession, notice: Notice) -> None:
        """Send `notice` unless it was sent; the log row commits with the event's inbox row.

        At least once: a crash after the server accepted the message and before this
        transaction commits sends it again on redelivery, with the same Message-ID."""
        sent = SqlSentMessages(session)
        if await sent.was_sent(event_id=notice.event_id, kind=notice.kind):
            return
        now = self.clock()
        message = self.renderer.compose(notice, now=now)
        await self.mailer.send(message)
        await sent.add(
            SentMessage(
                event_id=notice.event_id,
                kind=notice.kind,
                message_id=str(message["Message-ID"]),
                order_id=notice.order_id,
                recipient=notice.recipient,
                locale=notice.locale,
                subject=str(message["Subject"]),
                sent_at=now,
            )
        )
        log.info(
            "notifications.sent",
            kind=notice.kind,
            order_id=notice.order_id,
            event_id=notice.event_id,
            message_id=str(message["Message-ID"]),
        )
