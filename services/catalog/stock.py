"""Stock: levels per product and reservations per order (docs/stock.md, ADR 024).

A product tracks stock when it has a `stock_levels` row with `tracked`. Checkout reserves an
order's quantities, all lines or none; the hold is bound to the payment attempt it waits for
and has a deadline; paid turns it into a sale, cancel or expiry releases it. Every change
records `catalog.stock.changed.v1` in the transaction of the change.

The guard against overselling is one conditional statement per product,
`UPDATE stock_levels SET reserved = reserved + :q WHERE on_hand - reserved >= :q`: the row lock
it takes serializes racing reservations of one product in PostgreSQL, and SQLite's writers
queue up behind `BEGIN IMMEDIATE`. Products are taken in id order, so two multi-line
reservations never wait for each other in a cycle; any short line rolls the whole
transaction back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from libs.contracts.catalog import (
    ProductStock,
    ReservationLineOut,
    ReservationOut,
    StockCheckLine,
    StockCheckOut,
    StockLevelOut,
    StockLineIn,
)
from libs.contracts.events import StockChanged
from libs.runtime.problems import InvalidInput, ProblemError
from libs.runtime.runtime import Runtime
from services.catalog.stock_store import Held, Level, SqlStockRepository, Status, product_id
from services.catalog.store import now

log = structlog.get_logger(__name__)

Reason = Literal["set", "reserved", "released", "sold", "backordered"]


class OutOfStock(ProblemError):
    status, code, title = 409, "out_of_stock", "Not enough in stock"


# --------------------------------------------------------------------------------- the rules


@dataclass(frozen=True)
class Sale:
    """How a reservation line becomes a sale: what comes off `reserved` and `on_hand`."""

    reserved: int
    on_hand: int
    backordered: int


def plan_sale(status: Status, quantity: int, free: int) -> Sale:
    """A held line is sold from its hold. A released one takes what is free now; the rest is
    sold anyway and backordered (a payment is never refused, stock never silently oversold)."""
    if status == "held":
        return Sale(reserved=quantity, on_hand=quantity, backordered=0)
    if status == "released":
        return Sale(reserved=0, on_hand=quantity, backordered=max(0, quantity - max(0, free)))
    return Sale(reserved=0, on_hand=0, backordered=0)  # sold already: nothing changes


def shortages(wanted: Mapping[str, int], levels: Mapping[str, Level]) -> dict[str, int]:
    """Tracked products of `wanted` (product id → units) that have less free: id → free."""
    return {
        pid: levels[pid].available or 0
        for pid, quantity in wanted.items()
        if pid in levels and levels[pid].tracked and (levels[pid].available or 0) < quantity
    }


def out_of_stock(short: Mapping[str, tuple[str, int, int]]) -> OutOfStock:
    """409 naming the products: key → (key, wanted, free); `products` lists them."""
    items = sorted(short.values())
    listed = ", ".join(f"{key} ({wanted} wanted, {free} left)" for key, wanted, free in items)
    return OutOfStock(
        f"Not enough in stock: {listed}.",
        errors=InvalidInput.for_field("lines", "out of stock").errors,
        extra={
            "products": [
                {"product_key": key, "requested": wanted, "available": free}
                for key, wanted, free in items
            ]
        },
    )


def reservation_out(order_id: str, rows: Sequence[Held]) -> ReservationOut:
    statuses = {row.status for row in rows}
    status = "none" if not rows else next(s for s in ("held", "sold", "released") if s in statuses)
    return ReservationOut(
        order_id=order_id,
        status=status,
        attempt_id=next((r.attempt_id for r in rows if r.attempt_id), None),
        expires_at=min((r.expires_at for r in rows if r.status == "held"), default=None),
        lines=[
            ReservationLineOut(
                product_key=r.product_key,
                quantity=r.quantity,
                status=r.status,
                backordered=r.backordered,
            )
            for r in rows
        ],
    )


def stock_view(level: Level | None) -> ProductStock:
    if level is None or not level.tracked:
        return ProductStock(tracked=False, available=None)
    return ProductStock(tracked=True, available=level.available)


# --------------------------------------------------------------------------------- the verbs


class StockService:
    """Levels and reservations; every change records `catalog.stock.changed.v1`."""

    def __init__(self, *, runtime: Runtime, hold: timedelta) -> None:
        self.runtime = runtime
        self.hold = hold
        # Racing reservations of one product queue on its row lock, each holding a pooled
        # connection while it waits: at most half the pool may wait so, and the rest of the
        # catalog (product pages, the lookups of checkout) keeps connections to answer with.
        pool = runtime.pool_size or runtime.settings.db_pool_size
        self._writers = asyncio.Semaphore(max(1, pool // 2))

    async def levels_of(
        self, connection: AsyncSession | AsyncConnection, product_ids: Sequence[str]
    ) -> dict[str, Level]:
        """Stock of products for their views (read on the caller's connection)."""
        return await SqlStockRepository(connection).levels(product_ids)

    async def check_stock(self, *, lines: Sequence[StockLineIn]) -> StockCheckOut:
        """Could these quantities be bought now? (The cart asks; checkout's reservation decides.)"""
        async with self.runtime.engine.connect() as connection:
            repo = SqlStockRepository(connection)
            resolved = await repo.resolve(lines)
            levels = await repo.levels(pid for pid, _ in resolved.values())
        wanted: dict[str, int] = {}
        for index, line in enumerate(lines):
            wanted[resolved[index][0]] = wanted.get(resolved[index][0], 0) + line.quantity
        short = shortages(wanted, levels)
        out = []
        for index, line in enumerate(lines):
            pid, key = resolved[index]
            level = levels.get(pid)
            out.append(
                StockCheckLine(
                    pricing_id=line.pricing_id,
                    product_key=key,
                    quantity=line.quantity,
                    tracked=bool(level and level.tracked),
                    available=level.available if level else None,
                )
            )
        return StockCheckOut(lines=out, short=sorted({levels[pid].product_key for pid in short}))

    async def get_stock(self, *, key: str) -> StockLevelOut:
        """A product's stock (404 for an unknown product)."""
        async with self.runtime.engine.connect() as connection:
            pid = await product_id(connection, key)
            level = (await SqlStockRepository(connection).levels([pid])).get(pid)
        return _level_out(key, level)

    async def set_on_hand(
        self, *, key: str, on_hand: int, tracked: bool = True, actor: str | None = None
    ) -> StockLevelOut:
        """Set the units on hand (an operator counted them); reserved units stay reserved."""
        at = now()
        async with self.runtime.transaction() as session:
            pid = await product_id(session, key)
            repo = SqlStockRepository(session)
            await repo.set_on_hand(pid, on_hand, tracked, at)
            level = (await repo.levels([pid]))[pid]
            await self._changed(session, level, "set", actor=actor)
        log.info("stock.set", product_key=key, on_hand=on_hand, tracked=tracked, actor=actor)
        return _level_out(key, level)

    async def start_tracking(self, *, key: str, on_hand: int) -> bool:
        """Track a product that does not track stock yet, with `on_hand` units; False (and
        nothing changed) when it already has a stock row (`setupproducts` reruns)."""
        async with self.runtime.transaction() as session:
            pid = await product_id(session, key)
            repo = SqlStockRepository(session)
            if await repo.levels([pid]):  # tracked or not, it was counted before
                return False
            await repo.set_on_hand(pid, on_hand, True, now())
            level = (await repo.levels([pid]))[pid]
            await self._changed(session, level, "set", actor="setupproducts")
        return True

    async def reserve_stock(self, *, order_id: str, lines: Sequence[StockLineIn]) -> ReservationOut:
        """Hold the order's quantities, all lines or none (409 `out_of_stock` naming the
        products). A held reservation answers the same again (its deadline renewed, its
        attempt unbound until the next one starts); a released one is taken anew."""
        async with self._writers:
            try:
                return await self._reserve(order_id, lines)
            except IntegrityError:
                # A racing call for the same order inserted its hold first: answer with it.
                return await self._reserve(order_id, lines)

    async def _reserve(self, order_id: str, lines: Sequence[StockLineIn]) -> ReservationOut:
        at = now()
        until = at + self.hold
        async with self.runtime.transaction() as session:
            repo = SqlStockRepository(session)
            rows = await repo.reservation(order_id, lock=True)
            if rows and all(r.status != "released" for r in rows):
                for row in rows:
                    if row.status == "held":
                        await repo.mark(
                            order_id,
                            row.product_id,
                            expires_at=until,
                            attempt_id=None,
                            updated_at=at,
                        )
                return reservation_out(order_id, await repo.reservation(order_id))
            if rows:  # released: the order's own lines, taken anew
                wanted = {r.product_id: r.quantity for r in rows if r.status == "released"}
            else:
                resolved = await repo.resolve(lines)
                wanted = {}
                for index, line in enumerate(lines):
                    pid = resolved[index][0]
                    wanted[pid] = wanted.get(pid, 0) + line.quantity
            levels = await repo.levels(wanted)
            tracked = {pid: q for pid, q in wanted.items() if pid in levels and levels[pid].tracked}
            short: dict[str, tuple[str, int, int]] = {}
            taken: list[Level] = []
            for pid, quantity in sorted(tracked.items()):
                after = await repo.take(pid, quantity, at)
                if after is None:
                    short[pid] = (levels[pid].product_key, quantity, 0)
                else:
                    taken.append(Level(pid, levels[pid].product_key, True, *after))
            if short:
                # Rolled back with the transaction; the answer says what is free right now.
                fresh = await repo.levels(short)
                raise out_of_stock(
                    {pid: (key, q, fresh[pid].available or 0) for pid, (key, q, _) in short.items()}
                )
            if rows:
                for pid in tracked:
                    await repo.mark(
                        order_id,
                        pid,
                        status="held",
                        expires_at=until,
                        attempt_id=None,
                        updated_at=at,
                    )
            elif tracked:
                await repo.hold(order_id, tracked, until, at)
            for level in taken:
                await self._changed(session, level, "reserved", order_id=order_id)
        return reservation_out(
            order_id,
            [
                Held(
                    order_id,
                    level.product_id,
                    level.product_key,
                    tracked[level.product_id],
                    "held",
                    None,
                    until,
                    0,
                )
                for level in taken
            ],
        )

    async def bind_attempt(self, *, order_id: str, attempt_id: str) -> ReservationOut:
        """The payment attempt the hold now waits for: only that attempt's expiry releases it."""
        async with self.runtime.transaction() as session:
            repo = SqlStockRepository(session)
            for row in await repo.reservation(order_id, lock=True):
                if row.status == "held":
                    await repo.mark(
                        order_id, row.product_id, attempt_id=attempt_id, updated_at=now()
                    )
            return reservation_out(order_id, await repo.reservation(order_id))

    async def release_stock(
        self,
        *,
        order_id: str,
        attempt_id: str | None = None,
        session: AsyncSession | None = None,
    ) -> ReservationOut:
        """Give a held reservation back (idempotent). With `attempt_id`, only a hold bound to
        that attempt: the expiry of an old attempt never releases a pay-again's new hold."""
        if session is not None:
            return await self._release(session, order_id, attempt_id)
        async with self._writers, self.runtime.transaction() as own:
            return await self._release(own, order_id, attempt_id)

    async def _release(
        self, session: AsyncSession, order_id: str, attempt_id: str | None
    ) -> ReservationOut:
        at = now()
        repo = SqlStockRepository(session)
        rows = await repo.reservation(order_id, lock=True)
        for row in rows:
            if row.status != "held" or (attempt_id is not None and row.attempt_id != attempt_id):
                continue
            await repo.adjust(row.product_id, reserved=row.quantity, on_hand=0, at=at)
            await repo.mark(order_id, row.product_id, status="released", updated_at=at)
            level = (await repo.levels([row.product_id]))[row.product_id]
            await self._changed(session, level, "released", order_id=order_id)
        return reservation_out(order_id, await repo.reservation(order_id))

    async def commit_stock(self, *, order_id: str) -> ReservationOut:
        """The order is paid: its reservation becomes a sale, once. Lines released meanwhile
        take what is free; the rest is sold anyway and reported `backordered`."""
        at = now()
        async with self._writers, self.runtime.transaction() as session:
            repo = SqlStockRepository(session)
            rows = await repo.reservation(order_id, lock=True)
            pending = [r for r in rows if r.status != "sold"]
            levels = await repo.levels((r.product_id for r in pending), lock=True)
            for row in pending:
                level = levels[row.product_id]
                sale = plan_sale(row.status, row.quantity, level.on_hand - level.reserved)
                await repo.adjust(
                    row.product_id, reserved=sale.reserved, on_hand=sale.on_hand, at=at
                )
                await repo.mark(
                    order_id,
                    row.product_id,
                    status="sold",
                    backordered=sale.backordered,
                    updated_at=at,
                )
                level = (await repo.levels([row.product_id]))[row.product_id]
                levels[row.product_id] = level
                reason: Reason = "backordered" if sale.backordered else "sold"
                await self._changed(session, level, reason, order_id=order_id)
            if pending:
                log.info("stock.sold", order_id=order_id, lines=len(pending))
            return reservation_out(order_id, await repo.reservation(order_id))

    async def release_expired(self, *, limit: int = 100) -> int:
        """Release holds past their deadline (a checkout that never finished); how many orders."""
        async with self.runtime.transaction() as session:
            orders = await SqlStockRepository(session).expired(now(), limit)
            for order_id in orders:
                await self._release(session, order_id, None)
        if orders:
            log.info("stock.expired_released", orders=len(orders))
        return len(orders)

    async def _changed(
        self,
        session: AsyncSession,
        level: Level,
        reason: Reason,
        *,
        order_id: str | None = None,
        actor: str | None = None,
    ) -> None:
        await self.runtime.record(
            session,
            StockChanged(
                product_key=level.product_key,
                tracked=level.tracked,
                on_hand=level.on_hand,
                reserved=max(0, level.reserved),
                available=level.available,
                reason=reason,
                order_id=order_id,
                actor=actor,
            ),
            ordering_key=f"stock:{level.product_key}",
        )


def _level_out(key: str, level: Level | None) -> StockLevelOut:
    if level is None:
        return StockLevelOut(product_key=key, tracked=False)
    return StockLevelOut(
        product_key=key,
        tracked=level.tracked,
        on_hand=level.on_hand,
        reserved=level.reserved,
        available=level.available,
    )


@contextlib.asynccontextmanager
async def sweeping(stock: StockService, *, interval_s: float, batch: int) -> AsyncIterator[None]:
    """Release expired holds every `interval_s` while the service runs: a checkout whose
    gateway died between reserving and paying leaks nothing past its deadline."""
    if interval_s <= 0:
        yield
        return

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                while await stock.release_expired(limit=batch) >= batch:
                    pass  # a full batch: more may wait
            except Exception as exc:  # a database outage: try again next period
                log.warning("stock.sweep_failed", error=repr(exc))

    task = asyncio.create_task(loop(), name="catalog-stock-sweep")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
