"""The order repository: its port and the SQL adapter (SQLite and PostgreSQL alike).

On purpose there is no method that changes an order's details, currency, total or number:
the only updates are setting `paid` once and re-owning an anonymous shopper's orders.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import Row, Table, func, insert, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.contracts.common import Owner
from libs.contracts.orders import OrderStatus
from services.orders.domain import Cursor, Order, order_number
from services.orders.tables import OrderNumberRow, OrderRow, OwnerMergeRow


class OrderRepository(Protocol):
    async def get(self, order_id: str) -> Order | None: ...

    async def find(self, *, order_id: str, cart_id: str) -> tuple[Order | None, Order | None]: ...

    async def next_number(self, *, order_id: str, year: int) -> str: ...

    async def add(self, order: Order) -> None: ...

    async def list_for_owner(
        self, owner: Owner, *, paid: bool | None, limit: int, after: Cursor | None
    ) -> list[Order]: ...

    async def mark_paid(
        self, order_id: str, *, paid_at: datetime, attempt_id: str | None
    ) -> Order | None:
        """Set `paid` if it is not set yet; the order when this call set it, else None."""
        ...

    async def cancel(
        self, order_id: str, *, at: datetime, by: str, reason: str | None, actor: str | None
    ) -> Order | None: ...

    async def merged_user(self, anonymous_id: str) -> str | None: ...

    async def record_merge(self, *, anonymous_id: str, user_id: str, at: datetime) -> None: ...

    async def reassign_anonymous(self, *, anonymous_id: str, user_id: str) -> int: ...


class SqlOrderRepository:
    """Orders in the service's SQL database, within the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, order_id: str) -> Order | None:
        row = await self.session.get(OrderRow, order_id)
        return None if row is None else _to_order(row)

    async def get_for_update(self, order_id: str) -> Order | None:
        """The order, locked until the transaction ends (its fulfilments are decided under it)."""
        row = await self.session.scalar(
            select(OrderRow).where(OrderRow.id == order_id).with_for_update()
        )
        return None if row is None else _to_order(row)

    async def get_by_number(self, number: str) -> Order | None:
        row = await self.session.scalar(select(OrderRow).where(OrderRow.number == number))
        return None if row is None else _to_order(row)

    async def list_all(
        self,
        *,
        status: OrderStatus | None,
        email: str | None,
        limit: int,
        after: Cursor | None,
    ) -> list[Order]:
        """One page of every order, newest first, after `after` (keyset on ix_orders_created)."""
        query = select(OrderRow)
        if status == "paid":
            query = query.where(OrderRow.paid.is_not(None))
        elif status == "canceled":
            query = query.where(OrderRow.canceled_at.is_not(None))
        elif status == "pending":
            query = query.where(OrderRow.paid.is_(None), OrderRow.canceled_at.is_(None))
        if email is not None:
            # Known simplification: no index on the billing e-mail; with the newest-first walk
            # and a page limit, an operator's search reads the archive until the page is full.
            billing_email = OrderRow.details["billing"]["email"].as_string()
            query = query.where(func.lower(billing_email) == email.lower())
        if after is not None:
            query = query.where(
                tuple_(OrderRow.created_at, OrderRow.id) < tuple_(after.created_at, after.order_id)
            )
        query = query.order_by(OrderRow.created_at.desc(), OrderRow.id.desc()).limit(limit)
        return [_to_order(row) for row in (await self.session.scalars(query)).all()]

    async def find(self, *, order_id: str, cart_id: str) -> tuple[Order | None, Order | None]:
        """The order with this id and the order of this cart, in one query: the same order,
        two different ones (the id is taken by another cart), or none."""
        rows = await self.session.scalars(
            select(OrderRow).where(or_(OrderRow.id == order_id, OrderRow.cart_id == cart_id))
        )
        found = [_to_order(row) for row in rows]
        by_id = next((order for order in found if order.id == order_id), None)
        by_cart = next((order for order in found if order.cart_id == cart_id), None)
        return by_id, by_cart

    async def next_number(self, *, order_id: str, year: int) -> str:
        """Take the next value of the portable sequence (a gap if the transaction rolls back)."""
        # Core statements on the checkout path: no unit of work to flush.
        value = await self.session.scalar(
            insert(OrderNumberRow).values(order_id=order_id).returning(OrderNumberRow.value)
        )
        assert value is not None
        return order_number(year, value)

    async def add(self, order: Order) -> None:
        """Insert; a taken id or cart raises IntegrityError (the caller resolves the race)."""
        await self.session.execute(
            insert(OrderRow).values(
                id=order.id,
                number=order.number,
                cart_id=order.cart_id,
                owner_kind=order.owner.kind,
                owner_id=order.owner.id,
                customer_id=order.customer_id,
                organization_id=order.organization_id,
                currency=order.currency,
                total=order.total,
                details=dict(order.details),
                created_at=order.created_at,
                paid=order.paid,
                paid_attempt_id=order.paid_attempt_id,
            )
        )

    async def list_for_owner(
        self, owner: Owner, *, paid: bool | None, limit: int, after: Cursor | None
    ) -> list[Order]:
        """One page of an owner's orders, newest first, after `after` (keyset)."""
        query = select(OrderRow).where(
            OrderRow.owner_kind == owner.kind, OrderRow.owner_id == owner.id
        )
        if paid is True:
            query = query.where(OrderRow.paid.is_not(None))
        elif paid is False:
            query = query.where(OrderRow.paid.is_(None))
        if after is not None:
            # A row comparison, not `a < x OR (a = x AND b < y)`: only the former bounds the
            # walk of ix_orders_owner_created, so a deep page of a long archive reads its own
            # rows and not every newer order first.
            query = query.where(
                tuple_(OrderRow.created_at, OrderRow.id) < tuple_(after.created_at, after.order_id)
            )
        query = query.order_by(OrderRow.created_at.desc(), OrderRow.id.desc()).limit(limit)
        return [_to_order(row) for row in (await self.session.scalars(query)).all()]

    async def mark_paid(
        self, order_id: str, *, paid_at: datetime, attempt_id: str | None
    ) -> Order | None:
        # One statement on the table (no ORM identity map): the guarded update returns the
        # order it paid, so the paid event needs no read of its own.
        orders = cast(Table, OrderRow.__table__)
        row = (
            await self.session.execute(
                update(orders)
                .where(
                    orders.c.id == order_id,
                    orders.c.paid.is_(None),
                    orders.c.canceled_at.is_(None),
                )
                .values(paid=paid_at, paid_attempt_id=attempt_id)
                .returning(*orders.c)
            )
        ).first()
        return None if row is None else _to_order(row)

    async def cancel(
        self, order_id: str, *, at: datetime, by: str, reason: str | None, actor: str | None
    ) -> Order | None:
        """Cancel the order if it is neither paid nor canceled (one guarded statement, so a
        payment and a cancel racing for it cannot both win); the canceled order, else None."""
        orders = cast(Table, OrderRow.__table__)
        row = (
            await self.session.execute(
                update(orders)
                .where(
                    orders.c.id == order_id,
                    orders.c.paid.is_(None),
                    orders.c.canceled_at.is_(None),
                )
                .values(canceled_at=at, canceled_by=by, cancel_reason=reason, canceled_actor=actor)
                .returning(*orders.c)
            )
        ).first()
        return None if row is None else _to_order(row)

    async def merged_user(self, anonymous_id: str) -> str | None:
        return await self.session.scalar(
            select(OwnerMergeRow.user_id).where(OwnerMergeRow.anonymous_id == anonymous_id)
        )

    async def record_merge(self, *, anonymous_id: str, user_id: str, at: datetime) -> None:
        if await self.session.get(OwnerMergeRow, anonymous_id) is None:
            self.session.add(
                OwnerMergeRow(anonymous_id=anonymous_id, user_id=user_id, merged_at=at)
            )
            await self.session.flush()

    async def reassign_anonymous(self, *, anonymous_id: str, user_id: str) -> int:
        result = await self.session.execute(
            update(OrderRow)
            .where(OrderRow.owner_kind == "anonymous", OrderRow.owner_id == anonymous_id)
            .values(owner_kind="user", owner_id=user_id)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _to_order(row: OrderRow | Row[Any]) -> Order:
    return Order(
        id=row.id,
        number=row.number,
        cart_id=row.cart_id,
        owner=Owner(kind=row.owner_kind, id=row.owner_id),
        customer_id=row.customer_id,
        organization_id=row.organization_id,
        currency=row.currency,
        total=row.total,
        details=row.details,
        created_at=row.created_at,
        paid=row.paid,
        paid_attempt_id=row.paid_attempt_id,
        backordered=bool(row.backordered),
        canceled_at=row.canceled_at,
        canceled_by=row.canceled_by,
        cancel_reason=row.cancel_reason,
    )
