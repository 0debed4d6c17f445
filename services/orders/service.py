"""OrdersService: the verbs of the orders service."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.contracts.common import Owner, Principal
from libs.contracts.events import (
    AnonymousMerged,
    DisputeClosed,
    DisputeOpened,
    OrderCanceled,
    OrderCreated,
    OrderPaid,
    PaymentSucceeded,
    RefundFailed,
    RefundSucceeded,
)
from libs.contracts.orders import (
    CreateFulfillmentIn,
    OrderPaidFilter,
    OrderStatus,
    PrepareOrderIn,
)
from libs.runtime.problems import InvalidInput, Unauthorized
from libs.runtime.runtime import Runtime
from services.orders.catalog import Catalog, shipping_terms
from services.orders.disputes import SqlDisputeRepository
from services.orders.domain import (
    Cursor,
    Order,
    OrderAlreadyPaid,
    OrderIdConflict,
    OrderIsCanceled,
    OrderNotFound,
    OrderNotYetVisible,
    build_details,
    check_pricings,
    check_shipping,
    paid_lines,
    parse_country,
    parse_currency,
    reported_dispute,
    reported_refund,
    requires_shipping,
    shipped_to,
)
from services.orders.fulfillments import SqlFulfillmentRepository, fulfil_order
from services.orders.refunds import SqlRefundRepository
from services.orders.settings import OrdersSettings
from services.orders.stock import CatalogStock, StockLedger, sell_reserved_stock
from services.orders.store import SqlOrderRepository

log = structlog.get_logger(__name__)

MAX_PRICES_PER_ORDER = 500  # what one catalog lookup accepts


def utc_now() -> datetime:
    return datetime.now(UTC)


class OrdersService:
    """Prepares immutable orders, keeps the archive, records payment."""

    def __init__(
        self,
        *,
        runtime: Runtime,
        catalog: Catalog,
        settings: OrdersSettings,
        clock: Callable[[], datetime] = utc_now,
        stock: StockLedger | None = None,
    ) -> None:
        self.runtime = runtime
        self.catalog = catalog
        self.settings = settings
        self.clock = clock
        self.stock: StockLedger = stock or CatalogStock(lambda: runtime.client("catalog"))

    # --- prepare_order -----------------------------------------------------------------------

    async def prepare_order(self, *, order: PrepareOrderIn) -> tuple[Order, bool]:
        """The order of a frozen cart, created once; True when this call created it."""
        currency = parse_currency(order.currency)
        country = parse_country(order.billing.address.country)
        existing = await self._existing(order_id=order.order_id, cart_id=order.cart_id)
        if existing is not None:
            return existing, False

        # Prices and taxes come from the catalog now, in one call, outside the transaction (no
        # lock held while waiting on the network).
        pricing_ids = list(dict.fromkeys(line.pricing_id for line in order.lines))
        if len(pricing_ids) > MAX_PRICES_PER_ORDER:
            raise InvalidInput.for_field(
                "lines", f"at most {MAX_PRICES_PER_ORDER} different prices per order"
            )
        quote = await self.catalog.quote(pricing_ids, locale=order.locale, country=country)
        check_pricings(order.lines, quote.pricings, currency)
        check_shipping(
            required=requires_shipping(order.lines, quote.pricings), choice=order.shipping
        )
        shipping = None
        if order.shipping is not None:
            destination = parse_country(order.shipping.address.country, "shipping.address.country")
            found = await self.catalog.shipping_quote(
                order.shipping.method, country=destination, currency=currency, locale=order.locale
            )
            shipping = shipping_terms(found, order.shipping)
        details = build_details(
            cart_id=order.cart_id,
            customer_id=order.customer_id,
            locale=order.locale,
            currency=currency,
            billing=order.billing,
            lines=order.lines,
            pricings=quote.pricings,
            tax_rates=quote.tax_rates(),
            shipping=shipping,
        )

        try:
            async with self.runtime.transaction() as session:
                orders = SqlOrderRepository(session)
                owner = await self._current_owner(orders, order.owner)
                created_at = self.clock()
                number = await orders.next_number(order_id=order.order_id, year=created_at.year)
                new = Order(
                    id=order.order_id,
                    number=number,
                    cart_id=order.cart_id,
                    owner=owner,
                    customer_id=order.customer_id,
                    organization_id=owner.id if owner.kind == "organization" else None,
                    currency=currency,
                    total=details.total,
                    details=details.model_dump(mode="json"),
                    created_at=created_at,
                )
                await orders.add(new)
                await self.runtime.record(
                    session,
                    OrderCreated(
                        order_id=new.id,
                        number=new.number,
                        owner=new.owner,
                        customer_id=new.customer_id,
                        currency=new.currency,
                        total=new.total,
                        shipping=shipped_to(new),
                    ),
                    ordering_key=f"order:{new.id}",
                )
        except IntegrityError:
            # Another prepare of the same order or cart committed first: theirs is the order.
            existing = await self._existing(order_id=order.order_id, cart_id=order.cart_id)
            if existing is None:
                raise
            return existing, False
        log.info("order.created", order_id=new.id, number=new.number, total=new.total)
        return new, True

    async def _existing(self, *, order_id: str, cart_id: str) -> Order | None:
        async with self.runtime.transaction() as session:
            by_id, by_cart = await SqlOrderRepository(session).find(
                order_id=order_id, cart_id=cart_id
            )
        if by_id is not None and by_id.cart_id != cart_id:
            raise OrderIdConflict(f"Order {order_id} belongs to another cart.")
        return by_id or by_cart

    @staticmethod
    async def _current_owner(orders: SqlOrderRepository, owner: Owner) -> Owner:
        # A merge that was handled before this order was prepared still applies to it.
        if owner.kind == "anonymous":
            user_id = await orders.merged_user(owner.id)
            if user_id is not None:
                return Owner(kind="user", id=user_id)
        return owner

    # --- the archive -------------------------------------------------------------------------

    async def get_order(self, *, principal: Principal, order_id: str) -> Order:
        """One order, for its owner only; anyone else learns nothing (404)."""
        async with self.runtime.transaction() as session:
            order = await SqlOrderRepository(session).get(order_id)
            if order is None or not principal.owns(order.owner):
                raise OrderNotFound(f"No order {order_id}.")
            (order,) = await _with_refunds_and_disputes(session, [order])
        return order

    async def get_user_orders(
        self,
        *,
        principal: Principal,
        paid: OrderPaidFilter | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> tuple[list[Order], str | None]:
        """The principal's orders, newest first, one page; the cursor of the next page."""
        owner = principal.owner
        if owner is None:
            raise Unauthorized("Orders belong to a user or an anonymous shopper.")
        size = limit or self.settings.page_size
        if not 1 <= size <= self.settings.max_page_size:
            raise InvalidInput.for_field(
                "limit", f"must be between 1 and {self.settings.max_page_size}"
            )
        after = Cursor.decode(cursor) if cursor else None
        async with self.runtime.transaction() as session:
            page = await SqlOrderRepository(session).list_for_owner(
                owner,
                paid=None if paid is None else paid == "paid",
                limit=size + 1,
                after=after,
            )
            page = await _with_refunds_and_disputes(session, page)
        if len(page) <= size:
            return page, None
        last = page[size - 1]
        return page[:size], Cursor(created_at=last.created_at, order_id=last.id).encode()

    # --- operators (the gateway's admin API) -----------------------------------------------

    async def get_all_orders(
        self,
        *,
        status: OrderStatus | None = None,
        email: str | None = None,
        number: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> tuple[list[Order], str | None]:
        """Every order, newest first, one page; filtered by status, billing e-mail, number."""
        size = self._page_size(limit)
        if number is not None:
            try:
                order = await self.get_any_order(number=number)
            except OrderNotFound:
                return [], None
            matches = (status is None or order.status == status) and (
                email is None or _billing_email(order) == email.lower()
            )
            return ([order] if matches else []), None
        after = Cursor.decode(cursor) if cursor else None
        async with self.runtime.transaction() as session:
            page = await SqlOrderRepository(session).list_all(
                status=status, email=email, limit=size + 1, after=after
            )
            page = await _with_refunds_and_disputes(session, page)
        return _page(page, size)

    async def get_any_order(
        self, *, order_id: str | None = None, number: str | None = None
    ) -> Order:
        """Any order, by its id or its number, with all it gathered since."""
        async with self.runtime.transaction() as session:
            orders = SqlOrderRepository(session)
            order = (
                await orders.get(order_id)
                if order_id is not None
                else await orders.get_by_number(number or "")
            )
            if order is None:
                raise OrderNotFound(f"No order {order_id or number}.")
            (order,) = await _with_refunds_and_disputes(session, [order])
        return order

    async def fulfil_order(
        self, *, order_id: str, shipment: CreateFulfillmentIn, actor: str | None
    ) -> Order:
        """Hand goods of a paid order to a carrier (never more than ordered); publishes
        OrderFulfilled."""
        await fulfil_order(
            self.runtime, order_id=order_id, shipment=shipment, actor=actor, clock=self.clock
        )
        return await self.get_any_order(order_id=order_id)

    def _page_size(self, limit: int | None) -> int:
        size = limit or self.settings.page_size
        if not 1 <= size <= self.settings.max_page_size:
            raise InvalidInput.for_field(
                "limit", f"must be between 1 and {self.settings.max_page_size}"
            )
        return size

    # --- what other services tell us ---------------------------------------------------------

    async def mark_paid(self, *, session: AsyncSession, payment: PaymentSucceeded) -> None:
        """Set `paid` once and publish OrderPaid once, whatever the number of successes."""
        orders = SqlOrderRepository(session)
        order = await orders.mark_paid(
            payment.order_id, paid_at=payment.succeeded_at, attempt_id=payment.attempt_id
        )
        if order is None:
            known = await orders.get(payment.order_id)
            if known is None:
                # The payment overtook the order (or its commit): fail so the bus redelivers it.
                raise OrderNotYetVisible(f"order {payment.order_id} is not known (yet)")
            if known.canceled_at is not None:
                # Canceled first: it stays canceled. Payments refunds this money when it hears
                # of the cancel (it may have paid the attempt before it did).
                log.warning(
                    "order.paid_after_cancel", order_id=known.id, attempt_id=payment.attempt_id
                )
                return
            # A second successful attempt: the order stays as it is; payments may refund it.
            _check_amount(known, payment)
            log.warning(
                "order.already_paid",
                order_id=known.id,
                attempt_id=payment.attempt_id,
                paid_attempt_id=known.paid_attempt_id,
            )
            return
        _check_amount(order, payment)
        await sell_reserved_stock(self.runtime, self.stock, session, order)
        await self.runtime.record(
            session,
            OrderPaid(
                order_id=order.id,
                number=order.number,
                owner=order.owner,
                customer_id=order.customer_id,
                currency=order.currency,
                total=order.total,
                paid_at=payment.succeeded_at,
                attempt_id=payment.attempt_id,
                lines=paid_lines(order),
                shipping=shipped_to(order),
            ),
            ordering_key=f"order:{order.id}",
        )
        log.info("order.paid", order_id=order.id, attempt_id=payment.attempt_id)

    # --- cancel ------------------------------------------------------------------------------

    async def cancel_order(
        self,
        *,
        order_id: str,
        principal: Principal | None,
        actor: str | None = None,
        reason: str | None = None,
    ) -> Order:
        """Cancel an unpaid order: its owner (`principal`) or an operator (`actor`, with no
        principal). 409 once paid or canceled; anyone else learns nothing (404). The event
        releases its stock and closes its checkouts; money that lands anyway is refunded."""
        async with self.runtime.transaction() as session:
            orders = SqlOrderRepository(session)
            order = await orders.get(order_id)
            if order is None or (principal is not None and not principal.owns(order.owner)):
                raise OrderNotFound(f"No order {order_id}.")
            by = "shopper" if principal is not None else "operator"
            canceled = await orders.cancel(
                order_id, at=self.clock(), by=by, reason=reason, actor=actor
            )
            if canceled is None:
                if order.paid is not None:
                    raise OrderAlreadyPaid(
                        f"Order {order.number} is paid; it can be refunded, not canceled."
                    )
                raise OrderIsCanceled(f"Order {order.number} is already canceled.")
            assert canceled.canceled_at is not None
            await self.runtime.record(
                session,
                OrderCanceled(
                    order_id=canceled.id,
                    number=canceled.number,
                    owner=canceled.owner,
                    customer_id=canceled.customer_id,
                    currency=canceled.currency,
                    total=canceled.total,
                    canceled_at=canceled.canceled_at,
                    canceled_by=by,
                    reason=reason,
                    actor=actor,
                ),
                ordering_key=f"order:{canceled.id}",
            )
            (canceled,) = await _with_refunds_and_disputes(session, [canceled])
        log.info("order.canceled", order_id=order_id, by=by, actor=actor, reason=reason)
        return canceled

    async def record_refund(
        self, *, session: AsyncSession, refund: RefundSucceeded | RefundFailed
    ) -> None:
        """Keep a refund payments reported, once; the first terminal status reported wins."""
        reported = reported_refund(refund)
        refunds = SqlRefundRepository(session)
        if not await refunds.record(reported):
            kept = await refunds.get(reported.id)
            if kept is not None and kept.status != reported.status:
                # Payments reports one final status per refund: a second, different one is
                # out of order or wrong, and an operator should look at the payment.
                log.error(
                    "order.refund_status_conflict",
                    order_id=reported.order_id,
                    refund_id=reported.id,
                    kept=kept.status,
                    reported=reported.status,
                )
            return
        order = await SqlOrderRepository(session).get(reported.order_id)
        if order is None:
            # Kept anyway, keyed by the order id: it shows once the order exists.
            log.warning("order.refund_before_order", order_id=reported.order_id)
        elif order.currency != reported.currency:
            log.error(
                "order.refund_currency_differs",
                order_id=order.id,
                refund_id=reported.id,
                refunded=reported.currency,
                expected=order.currency,
            )
        log.info(
            "order.refund_recorded",
            order_id=reported.order_id,
            refund_id=reported.id,
            status=reported.status,
            amount=reported.amount,
        )

    async def record_dispute(
        self, *, session: AsyncSession, dispute: DisputeOpened | DisputeClosed
    ) -> None:
        """Keep a dispute payments reported, once; a closed dispute never reopens."""
        if dispute.order_id is None:
            # A payment Store cannot match (a renewal, one taken outside Store): no order
            # shows it; payments lists it for the operator.
            log.info(
                "order.dispute_without_order",
                dispute_id=dispute.dispute_id,
                provider_dispute_id=dispute.provider_dispute_id,
            )
            return
        reported = reported_dispute(dispute, order_id=dispute.order_id)
        if not await SqlDisputeRepository(session).record(reported, at=self.clock()):
            log.info(
                "order.dispute_unchanged",
                order_id=reported.order_id,
                dispute_id=reported.id,
                status=reported.status,
            )
            return
        if await SqlOrderRepository(session).get(reported.order_id) is None:
            # Kept anyway, keyed by the order id: it shows once the order exists.
            log.warning("order.dispute_before_order", order_id=reported.order_id)
        log.info(
            "order.dispute_recorded",
            order_id=reported.order_id,
            dispute_id=reported.id,
            status=reported.status,
            closed=reported.closed_at is not None,
            evidence_due_by=reported.evidence_due_by,
        )

    async def anonymous_to_user(self, *, session: AsyncSession, merged: AnonymousMerged) -> None:
        """The anonymous shopper's orders become the user's, now and when prepared later."""
        orders = SqlOrderRepository(session)
        await orders.record_merge(
            anonymous_id=merged.anonymous_id, user_id=merged.user_id, at=self.clock()
        )
        moved = await orders.reassign_anonymous(
            anonymous_id=merged.anonymous_id, user_id=merged.user_id
        )
        log.info("orders.reowned", anonymous_id=merged.anonymous_id, moved=moved)


async def _with_refunds_and_disputes(session: AsyncSession, orders: list[Order]) -> list[Order]:
    """The orders with their refunds, disputes and fulfilments: one query each for all of them
    (no N+1)."""
    ids = [order.id for order in orders]
    refunds = await SqlRefundRepository(session).for_orders(ids)
    disputes = await SqlDisputeRepository(session).for_orders(ids)
    fulfillments = await SqlFulfillmentRepository(session).for_orders(ids)
    return [
        replace(
            order,
            refunds=refunds.get(order.id, ()),
            disputes=disputes.get(order.id, ()),
            fulfillments=fulfillments.get(order.id, ()),
        )
        for order in orders
    ]


def _page(page: list[Order], size: int) -> tuple[list[Order], str | None]:
    if len(page) <= size:
        return page, None
    last = page[size - 1]
    return page[:size], Cursor(created_at=last.created_at, order_id=last.id).encode()


def _billing_email(order: Order) -> str | None:
    email = order.details.get("billing", {}).get("email")
    return email.lower() if isinstance(email, str) else None


def _check_amount(order: Order, payment: PaymentSucceeded) -> None:
    """Say so when the money reported differs from the order's total (it stays paid)."""
    if (payment.amount, payment.currency.upper()) != (order.total, order.currency):
        log.error(
            "order.payment_amount_differs",
            order_id=order.id,
            attempt_id=payment.attempt_id,
            paid=f"{payment.amount} {payment.currency}",
            expected=f"{order.total} {order.currency}",
        )
