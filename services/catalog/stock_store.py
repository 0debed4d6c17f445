"""Stock's storage: levels per product and reservations per order, through one session or
connection (the caller owns the transaction). Core statements only; see stock.py for the
rules and the verbs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from libs.contracts.catalog import StockLineIn
from libs.runtime.problems import InvalidInput
from services.catalog.domain import ProductNotFound
from services.catalog.tables import pricings, products, stock_levels, stock_reservations

Status = Literal["held", "released", "sold"]


@dataclass(frozen=True)
class Level:
    product_id: str
    product_key: str
    tracked: bool
    on_hand: int
    reserved: int

    @property
    def available(self) -> int | None:
        return available(self.tracked, self.on_hand, self.reserved)


def available(tracked: bool, on_hand: int, reserved: int) -> int | None:
    """What can still be reserved: on hand minus reserved, never below 0; None untracked."""
    return max(0, on_hand - reserved) if tracked else None


@dataclass(frozen=True)
class Held:
    """One reservation row."""

    order_id: str
    product_id: str
    product_key: str
    quantity: int
    status: Status
    attempt_id: str | None
    expires_at: datetime
    backordered: int


class SqlStockRepository:
    def __init__(self, session: AsyncSession | AsyncConnection) -> None:
        self.session = session

    async def levels(self, product_ids: Iterable[str], *, lock: bool = False) -> dict[str, Level]:
        ids = sorted(set(product_ids))
        if not ids:
            return {}
        query = (
            select(stock_levels, products.c.key)
            .join(products, products.c.id == stock_levels.c.product_id)
            .where(stock_levels.c.product_id.in_(ids))
            .order_by(stock_levels.c.product_id)
        )
        if lock:
            query = query.with_for_update(of=stock_levels)
        rows = (await self.session.execute(query)).all()
        return {
            r.product_id: Level(r.product_id, r.key, r.tracked, r.on_hand, r.reserved) for r in rows
        }

    async def take(self, product_id: str, quantity: int, at: datetime) -> tuple[int, int] | None:
        """Reserve `quantity` if that much is free: the atomic guard against overselling.
        The new (on hand, reserved), or None when too little is free."""
        row = (
            await self.session.execute(
                update(stock_levels)
                .where(
                    stock_levels.c.product_id == product_id,
                    stock_levels.c.on_hand - stock_levels.c.reserved >= quantity,
                )
                .values(reserved=stock_levels.c.reserved + quantity, updated_at=at)
                .returning(stock_levels.c.on_hand, stock_levels.c.reserved)
            )
        ).first()
        return None if row is None else (int(row.on_hand), int(row.reserved))

    async def adjust(self, product_id: str, *, reserved: int, on_hand: int, at: datetime) -> None:
        """Take `reserved` and `on_hand` units off (negative: give back)."""
        await self.session.execute(
            update(stock_levels)
            .where(stock_levels.c.product_id == product_id)
            .values(
                reserved=stock_levels.c.reserved - reserved,
                on_hand=stock_levels.c.on_hand - on_hand,
                updated_at=at,
            )
        )

    async def set_on_hand(self, product_id: str, on_hand: int, tracked: bool, at: datetime) -> None:
        done = await self.session.execute(
            update(stock_levels)
            .where(stock_levels.c.product_id == product_id)
            .values(on_hand=on_hand, tracked=tracked, updated_at=at)
        )
        if not done.rowcount:  # type: ignore[attr-defined]
            await self.session.execute(
                insert(stock_levels).values(
                    product_id=product_id,
                    tracked=tracked,
                    on_hand=on_hand,
                    reserved=0,
                    updated_at=at,
                )
            )

    async def reservation(self, order_id: str, *, lock: bool = False) -> list[Held]:
        query = (
            select(stock_reservations, products.c.key)
            .join(products, products.c.id == stock_reservations.c.product_id)
            .where(stock_reservations.c.order_id == order_id)
            .order_by(stock_reservations.c.product_id)
        )
        if lock:
            query = query.with_for_update(of=stock_reservations)
        return [_held(r._mapping) for r in (await self.session.execute(query)).all()]

    async def hold(
        self, order_id: str, wanted: Mapping[str, int], until: datetime, at: datetime
    ) -> None:
        await self.session.execute(
            insert(stock_reservations),
            [
                {
                    "order_id": order_id,
                    "product_id": pid,
                    "quantity": quantity,
                    "status": "held",
                    "attempt_id": None,
                    "expires_at": until,
                    "backordered": 0,
                    "created_at": at,
                    "updated_at": at,
                }
                for pid, quantity in sorted(wanted.items())
            ],
        )

    async def mark(self, order_id: str, product_id: str, **values: Any) -> None:
        await self.session.execute(
            update(stock_reservations)
            .where(
                stock_reservations.c.order_id == order_id,
                stock_reservations.c.product_id == product_id,
            )
            .values(**values)
        )

    async def expired(self, before: datetime, limit: int) -> list[str]:
        """Orders with a hold past its deadline (several sweepers skip each other's rows)."""
        query = (
            select(stock_reservations.c.order_id)
            .where(stock_reservations.c.status == "held", stock_reservations.c.expires_at < before)
            .order_by(stock_reservations.c.expires_at)
            .limit(limit)
        )
        bind = self.session.get_bind() if isinstance(self.session, AsyncSession) else self.session
        if bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return list(dict.fromkeys((await self.session.execute(query)).scalars()))

    async def resolve(self, lines: Sequence[StockLineIn]) -> dict[int, tuple[str, str]]:
        """Each line's product (id, key), by position; unknown prices or keys are 422."""
        pricing_ids = sorted({line.pricing_id for line in lines if line.pricing_id})
        keys = sorted(
            {line.product_key for line in lines if line.product_key and not line.pricing_id}
        )
        by_pricing: dict[str, tuple[str, str]] = {}
        by_key: dict[str, tuple[str, str]] = {}
        if pricing_ids:
            rows = await self.session.execute(
                select(pricings.c.id, products.c.id.label("pid"), products.c.key)
                .join(products, products.c.id == pricings.c.product_id)
                .where(pricings.c.id.in_(pricing_ids))
            )
            by_pricing = {r.id: (r.pid, r.key) for r in rows}
        if keys:
            rows = await self.session.execute(
                select(products.c.id, products.c.key).where(products.c.key.in_(keys))
            )
            by_key = {r.key: (r.id, r.key) for r in rows}
        resolved: dict[int, tuple[str, str]] = {}
        for index, line in enumerate(lines):
            found = (
                by_pricing.get(line.pricing_id)
                if line.pricing_id
                else by_key.get(line.product_key or "")
            )
            if found is None:
                raise InvalidInput.for_field(
                    f"lines.{index}", "names no known price or product", code="unknown_product"
                )
            resolved[index] = found
        return resolved


def _held(m: Mapping[Any, Any]) -> Held:
    return Held(
        order_id=m["order_id"],
        product_id=m["product_id"],
        product_key=m["key"],
        quantity=int(m["quantity"]),
        status=m["status"],
        attempt_id=m["attempt_id"],
        expires_at=m["expires_at"],
        backordered=int(m["backordered"] or 0),
    )


async def product_id(session: AsyncSession | AsyncConnection, key: str) -> str:
    pid = (await session.execute(select(products.c.id).where(products.c.key == key))).scalar()
    if pid is None:
        raise ProductNotFound(f"no product with key {key!r}")
    return str(pid)
