"""Where carts live: anonymous carts in Redis, user carts and every checked-out cart in SQL.

Both adapters make each change atomic on their own: a Lua script per change in Redis (the
check — currency, maximum, line exists — and the write happen in one step on the server), a
row lock on the cart in SQL (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite serializes writers
with `BEGIN IMMEDIATE`). See docs/adr/002-cart-storage.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.contracts.common import Owner
from libs.runtime.runtime import Runtime
from services.cart.domain import (
    Cart,
    CurrencyMismatch,
    Limits,
    Line,
    LineNotFound,
    MergePlan,
    OrderIdInUse,
    QuantityExceedsMaximum,
    TooManyLines,
    check_add,
    check_quantity,
)
from services.cart.tables import cart_lines, cart_merges, carts

NewId = Callable[[], str]


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class CartRepository(Protocol):
    """The current (open) cart of one owner."""

    async def get(self, owner: Owner) -> Cart | None: ...

    async def add_line(
        self, owner: Owner, *, pricing_id: str, quantity: int, currency: str, limits: Limits
    ) -> Cart: ...

    async def set_quantity(
        self, owner: Owner, *, line_id: str, quantity: int, limits: Limits
    ) -> Cart: ...

    async def remove_line(self, owner: Owner, *, line_id: str) -> Cart: ...


# --- SQL -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockedCart:
    """An open cart whose row this transaction holds locked."""

    pk: str
    line_seq: int
    cart: Cart


class SqlCartRepository:
    """User carts and frozen carts in the service's database."""

    def __init__(self, runtime: Runtime, *, new_id: NewId = new_id) -> None:
        self._runtime = runtime
        self._new_id = new_id
        self._dialect = runtime.engine.dialect.name

    # -- the open cart (CartRepository) --

    async def get(self, owner: Owner) -> Cart | None:
        """The owner's open cart, without locking (one query)."""
        query = (
            select(carts, cart_lines.c.id.label("line_id"), cart_lines.c.pricing_id)
            .add_columns(cart_lines.c.quantity, cart_lines.c.position)
            .select_from(carts.outerjoin(cart_lines, cart_lines.c.cart_id == carts.c.id))
            .where(carts.c.open_key == owner.key)
        )
        async with self._runtime.sessions() as session:
            rows = (await session.execute(query)).mappings().all()
        if not rows:
            return None
        lines = [
            Line(r["line_id"], r["pricing_id"], r["quantity"], r["position"])
            for r in rows
            if r["line_id"] is not None
        ]
        return _cart(rows[0], lines)

    async def add_line(
        self, owner: Owner, *, pricing_id: str, quantity: int, currency: str, limits: Limits
    ) -> Cart:
        async with self._runtime.transaction() as session:
            locked = await self.lock_open(session, owner, create=True)
            assert locked is not None
            cart = locked.cart
            new_quantity = check_add(
                cart, pricing_id=pricing_id, quantity=quantity, currency=currency, limits=limits
            )
            now = utcnow()
            existing = cart.line_for(pricing_id)
            if existing is not None:
                await session.execute(
                    update(cart_lines)
                    .where(cart_lines.c.id == existing.line_id)
                    .values(quantity=new_quantity)
                )
                await self._touch(session, locked.pk, now)
                lines = [
                    replace(x, quantity=new_quantity) if x is existing else x for x in cart.lines
                ]
                return replace(cart, lines=tuple(lines))
            line = Line(self._new_id(), pricing_id, new_quantity, locked.line_seq + 1)
            await self._insert_lines(session, locked.pk, [line], now)
            await session.execute(
                update(carts)
                .where(carts.c.id == locked.pk)
                .values(line_seq=line.position, currency=currency, updated_at=now)
            )
            return replace(cart, currency=currency, lines=(*cart.lines, line))

    async def set_quantity(
        self, owner: Owner, *, line_id: str, quantity: int, limits: Limits
    ) -> Cart:
        check_quantity(quantity, limits)
        async with self._runtime.transaction() as session:
            locked = await self.lock_open(session, owner, create=False)
            line = locked.cart.line(line_id) if locked else None
            if locked is None or line is None:
                raise LineNotFound(line_id)
            await session.execute(
                update(cart_lines).where(cart_lines.c.id == line_id).values(quantity=quantity)
            )
            await self._touch(session, locked.pk, utcnow())
            lines = [replace(x, quantity=quantity) if x is line else x for x in locked.cart.lines]
            return replace(locked.cart, lines=tuple(lines))

    async def remove_line(self, owner: Owner, *, line_id: str) -> Cart:
        async with self._runtime.transaction() as session:
            locked = await self.lock_open(session, owner, create=False)
            line = locked.cart.line(line_id) if locked else None
            if locked is None or line is None:
                raise LineNotFound(line_id)
            await session.execute(delete(cart_lines).where(cart_lines.c.id == line_id))
            lines = tuple(x for x in locked.cart.lines if x is not line)
            currency = locked.cart.currency if lines else None
            await session.execute(
                update(carts)
                .where(carts.c.id == locked.pk)
                .values(currency=currency, updated_at=utcnow())
            )
            return replace(locked.cart, currency=currency, lines=lines)

    # -- building blocks for merge and checkout (inside the caller's transaction) --

    async def lock_open(
        self, session: AsyncSession, owner: Owner, *, create: bool
    ) -> LockedCart | None:
        """Lock the owner's open cart (creating it if asked) for the rest of the transaction."""
        query = select(carts).where(carts.c.open_key == owner.key).with_for_update()
        row = (await session.execute(query)).mappings().first()
        if row is None and create:
            now = utcnow()
            # Two first adds may race to create the cart: one insert wins, the other does
            # nothing and both then lock the winner's row.
            await session.execute(
                self._insert_ignore(carts).values(
                    id=self._new_id(),
                    external_id=self._new_id(),
                    owner_kind=owner.kind,
                    owner_id=owner.id,
                    open_key=owner.key,
                    currency=None,
                    line_seq=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            row = (await session.execute(query)).mappings().first()
        if row is None:
            return None
        lines = await self._lines(session, row["id"])
        return LockedCart(pk=row["id"], line_seq=row["line_seq"], cart=_cart(row, lines))

    async def apply_merge(self, session: AsyncSession, locked: LockedCart, plan: MergePlan) -> Cart:
        """Write a merge plan into a locked open cart."""
        now = utcnow()
        cart = locked.cart
        lines = list(cart.lines)
        for index, line in enumerate(lines):
            if line.pricing_id in plan.updates:
                quantity = plan.updates[line.pricing_id]
                await session.execute(
                    update(cart_lines)
                    .where(cart_lines.c.id == line.line_id)
                    .values(quantity=quantity)
                )
                lines[index] = replace(line, quantity=quantity)
        seq = locked.line_seq
        added = []
        for pricing_id, quantity in plan.additions:
            seq += 1
            added.append(Line(self._new_id(), pricing_id, quantity, seq))
        await self._insert_lines(session, locked.pk, added, now)
        lines.extend(added)
        currency = plan.currency if lines else None
        await session.execute(
            update(carts)
            .where(carts.c.id == locked.pk)
            .values(line_seq=seq, currency=currency, updated_at=now)
        )
        return replace(cart, currency=currency, lines=tuple(lines))

    async def freeze_open(
        self, session: AsyncSession, owner: Owner, *, order_id: str
    ) -> Cart | None:
        """Freeze the owner's open cart for `order_id`; None when there is no line to freeze.

        A racing checkout waits on the row lock, then finds no open cart any more.
        """
        locked = await self.lock_open(session, owner, create=False)
        if locked is None or not locked.cart.lines:
            return None
        now = utcnow()
        await session.execute(
            update(carts)
            .where(carts.c.id == locked.pk)
            .values(order_id=order_id, open_key=None, frozen_at=now, updated_at=now)
        )
        return replace(locked.cart, order_id=order_id)

    async def store_frozen(self, session: AsyncSession, cart: Cart) -> tuple[Cart, bool]:
        """Keep a cart frozen elsewhere (an anonymous one) durably; True if this call stored it.

        Idempotent by the cart's external id, so a retried or racing move stores it once.
        """
        now = utcnow()
        pk = self._new_id()
        result = await session.execute(
            self._insert_ignore(carts).values(
                id=pk,
                external_id=cart.cart_id,
                owner_kind=cart.owner.kind,
                owner_id=cart.owner.id,
                open_key=None,
                currency=cart.currency,
                order_id=cart.order_id,
                frozen_at=now,
                line_seq=max((x.position for x in cart.lines), default=0),
                created_at=now,
                updated_at=now,
            )
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            await self._insert_lines(session, pk, list(cart.lines), now)
            return cart, True
        existing = await self._one(session, carts.c.external_id == cart.cart_id)
        if existing is None:  # the order id belongs to another cart
            raise OrderIdInUse(cart.order_id or "")
        return existing, False

    async def find_by_order(self, session: AsyncSession, order_id: str) -> Cart | None:
        return await self._one(session, carts.c.order_id == order_id)

    async def latest_frozen(self, session: AsyncSession, owner: Owner) -> Cart | None:
        """The owner's most recently checked-out cart."""
        query = (
            select(carts)
            .where(
                carts.c.owner_kind == owner.kind,
                carts.c.owner_id == owner.id,
                carts.c.order_id.is_not(None),
            )
            .order_by(carts.c.frozen_at.desc())
            .limit(1)
        )
        row = (await session.execute(query)).mappings().first()
        return _cart(row, await self._lines(session, row["id"])) if row else None

    async def confirm_order(self, session: AsyncSession, order_id: str) -> bool:
        """Mark the cart frozen for `order_id` as having become an order."""
        result = await session.execute(
            update(carts)
            .where(carts.c.order_id == order_id, carts.c.order_confirmed_at.is_(None))
            .values(order_confirmed_at=utcnow())
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def mark_paid(self, session: AsyncSession, order_id: str) -> bool:
        """Mark the cart frozen for `order_id` as paid: a retried checkout no longer returns it."""
        result = await session.execute(
            update(carts)
            .where(carts.c.order_id == order_id, carts.c.order_paid_at.is_(None))
            .values(order_paid_at=utcnow())
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def record_merge(
        self, session: AsyncSession, *, anonymous_id: str, user_id: str, drain_token: str | None
    ) -> bool:
        """Remember that `anonymous_id` merged; False if it already had (or is doing so now)."""
        result = await session.execute(
            self._insert_ignore(cart_merges).values(
                anonymous_id=anonymous_id,
                user_id=user_id,
                drain_token=drain_token,
                merged_at=utcnow(),
            )
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def merged_drain_token(self, session: AsyncSession, anonymous_id: str) -> str | None:
        """The token of the anonymous cart copy the merge of `anonymous_id` moved."""
        query = select(cart_merges.c.drain_token).where(cart_merges.c.anonymous_id == anonymous_id)
        return (await session.execute(query)).scalar_one_or_none()

    async def set_merge_cart(
        self, session: AsyncSession, *, anonymous_id: str, cart_id: str
    ) -> None:
        await session.execute(
            update(cart_merges)
            .where(cart_merges.c.anonymous_id == anonymous_id)
            .values(cart_id=cart_id)
        )

    async def merge_recorded(self, anonymous_id: str) -> bool:
        async with self._runtime.sessions() as session:
            query = select(cart_merges.c.anonymous_id).where(
                cart_merges.c.anonymous_id == anonymous_id
            )
            return (await session.execute(query)).first() is not None

    async def reown_frozen(self, session: AsyncSession, *, anonymous_id: str, user_id: str) -> None:
        """The anonymous shopper's checked-out carts become the user's."""
        await session.execute(
            update(carts)
            .where(carts.c.owner_kind == "anonymous", carts.c.owner_id == anonymous_id)
            .values(owner_kind="user", owner_id=user_id, updated_at=utcnow())
        )

    # -- helpers --

    def _insert_ignore(self, table: Any) -> Any:
        """`INSERT ... ON CONFLICT DO NOTHING` in the engine's dialect."""
        from sqlalchemy.dialects import postgresql, sqlite

        if self._dialect == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing()
        return sqlite.insert(table).on_conflict_do_nothing()

    async def _one(self, session: AsyncSession, condition: Any) -> Cart | None:
        row = (await session.execute(select(carts).where(condition))).mappings().first()
        return _cart(row, await self._lines(session, row["id"])) if row else None

    async def _lines(self, session: AsyncSession, pk: str) -> list[Line]:
        query = (
            select(
                cart_lines.c.id,
                cart_lines.c.pricing_id,
                cart_lines.c.quantity,
                cart_lines.c.position,
            )
            .where(cart_lines.c.cart_id == pk)
            .order_by(cart_lines.c.position)
        )
        return [Line(*row) for row in (await session.execute(query)).all()]

    async def _insert_lines(
        self, session: AsyncSession, pk: str, lines: Sequence[Line], now: datetime
    ) -> None:
        if not lines:
            return
        await session.execute(
            insert(cart_lines),
            [
                {
                    "id": line.line_id,
                    "cart_id": pk,
                    "pricing_id": line.pricing_id,
                    "quantity": line.quantity,
                    "position": line.position,
                    "created_at": now,
                }
                for line in lines
            ],
        )

    async def _touch(self, session: AsyncSession, pk: str, now: datetime) -> None:
        await session.execute(update(carts).where(carts.c.id == pk).values(updated_at=now))


def _cart(row: Any, lines: Sequence[Line]) -> Cart:
    return Cart(
        cart_id=row["external_id"],
        owner=Owner(kind=row["owner_kind"], id=row["owner_id"]),
        currency=row["currency"] if lines else None,
        lines=tuple(sorted(lines, key=lambda x: x.position)),
        order_id=row["order_id"],
        order_confirmed=row["order_confirmed_at"] is not None,
        order_paid=row["order_paid_at"] is not None,
    )


# --- Redis -----------------------------------------------------------------------------------
#
# One hash per anonymous cart, `<prefix>:anon:<anonymous id>`:
#   id      the cart's external id          cur   its currency (absent while it has no line)
#   seq     last line position handed out   n     number of lines
#   p:<pricing id>  "<quantity>:<position>:<line id>"
# Every script refreshes the key's expiry: the cart expires after a period without use.
# A line is found by id with a scan of the (small) hash on the server, which keeps the hash —
# and every summary's reply — at one field per line.

_FIND_LINE = """
local function find_line(key, line_id)
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == 'p:' then
      local q, pos, lid = string.match(all[i + 1], '^(%d+):(%d+):(.+)$')
      if lid == line_id then return all[i], q, pos end
    end
  end
  return nil
end
"""

_ADD = """
local key = KEYS[1]
local qty, maxq = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('HSETNX', key, 'id', ARGV[6])
redis.call('PEXPIRE', key, ARGV[7])
local n = tonumber(redis.call('HGET', key, 'n') or '0')
if n > 0 then
  local cur = redis.call('HGET', key, 'cur')
  if cur and cur ~= ARGV[4] then return {'currency_mismatch', cur} end
end
local field = 'p:' .. ARGV[1]
local line = redis.call('HGET', key, field)
if line then
  local q, pos, lid = string.match(line, '^(%d+):(%d+):(.+)$')
  q = tonumber(q)
  if q + qty > maxq then return {'quantity_exceeds_maximum', tostring(q)} end
  redis.call('HSET', key, field, tostring(q + qty) .. ':' .. pos .. ':' .. lid)
else
  if qty > maxq then return {'quantity_exceeds_maximum', '0'} end
  if n >= tonumber(ARGV[8]) then return {'too_many_lines', tostring(n)} end
  local pos = redis.call('HINCRBY', key, 'seq', 1)
  redis.call('HSET', key, field, tostring(qty) .. ':' .. tostring(pos) .. ':' .. ARGV[5],
             'cur', ARGV[4])
  redis.call('HINCRBY', key, 'n', 1)
end
return {'ok', redis.call('HGETALL', key)}
"""

_SET_QUANTITY = (
    _FIND_LINE
    + """
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return {'line_not_found'} end
redis.call('PEXPIRE', key, ARGV[3])
local field, q, pos = find_line(key, ARGV[1])
if not field then return {'line_not_found'} end
redis.call('HSET', key, field, ARGV[2] .. ':' .. pos .. ':' .. ARGV[1])
return {'ok', redis.call('HGETALL', key)}
"""
)

_REMOVE = (
    _FIND_LINE
    + """
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return {'line_not_found'} end
redis.call('PEXPIRE', key, ARGV[2])
local field = find_line(key, ARGV[1])
if not field then return {'line_not_found'} end
redis.call('HDEL', key, field)
if redis.call('HINCRBY', key, 'n', -1) <= 0 then
  redis.call('HSET', key, 'n', 0)
  redis.call('HDEL', key, 'cur')
end
return {'ok', redis.call('HGETALL', key)}
"""
)

# Checkout: the cart is renamed to its owner's "frozen" key, so the next add starts a new
# cart, and stamped with the order id of the first checkout. It stays there until it is stored
# in SQL; a checkout that finds a frozen cart completes that move first.
_SEAL = """
if redis.call('EXISTS', KEYS[2]) == 1 then return {'pending'} end
if tonumber(redis.call('HGET', KEYS[1], 'n') or '0') == 0 then return {'empty'} end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[2], 'order', ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return {'sealed', redis.call('HGETALL', KEYS[2])}
"""

# Merge: the cart is renamed to its owner's "merging" key, stamped with the merge's token; it
# is deleted once the merge committed, or renamed back if the merge failed.
_DRAIN = """
if redis.call('EXISTS', KEYS[2]) == 1 then return {'existing', redis.call('HGETALL', KEYS[2])} end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'none'} end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[2], 'tok', ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return {'drained', redis.call('HGETALL', KEYS[2])}
"""

_RESTORE = """
if redis.call('HGET', KEYS[2], 'tok') ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('RENAME', KEYS[2], KEYS[1])
redis.call('HDEL', KEYS[1], 'tok')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

_DELETE_IF = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Drained:
    """An anonymous cart taken aside for a merge; `mine` if this merge took it."""

    cart: Cart
    token: str
    mine: bool


class RedisCartRepository:
    """Anonymous carts: one Redis hash each, with a sliding expiry."""

    def __init__(
        self, redis: Any, *, prefix: str, ttl_seconds: int, new_id: NewId = new_id
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl_ms = ttl_seconds * 1000
        self._new_id = new_id
        self._add = redis.register_script(_ADD)
        self._set_quantity = redis.register_script(_SET_QUANTITY)
        self._remove = redis.register_script(_REMOVE)
        self._seal = redis.register_script(_SEAL)
        self._drain = redis.register_script(_DRAIN)
        self._restore = redis.register_script(_RESTORE)
        self._delete_if = redis.register_script(_DELETE_IF)

    def key(self, anonymous_id: str) -> str:
        return f"{self._prefix}:anon:{anonymous_id}"

    def frozen_key(self, anonymous_id: str) -> str:
        return f"{self._prefix}:anon-frozen:{anonymous_id}"

    def merging_key(self, anonymous_id: str) -> str:
        return f"{self._prefix}:anon-merging:{anonymous_id}"

    async def get(self, owner: Owner) -> Cart | None:
        """The cart, and its expiry pushed back: reading is using (one round trip)."""
        key = self.key(owner.id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(key)
            pipe.pexpire(key, self._ttl_ms)
            fields, _ = await pipe.execute()
        return _parse(owner, _decode(fields))

    async def add_line(
        self, owner: Owner, *, pricing_id: str, quantity: int, currency: str, limits: Limits
    ) -> Cart:
        result = await self._add(
            keys=[self.key(owner.id)],
            args=[
                pricing_id,
                quantity,
                limits.max_quantity,
                currency,
                self._new_id(),
                self._new_id(),
                self._ttl_ms,
                limits.max_lines,
            ],
        )
        status, detail = _text(result[0]), result[1]
        if status == "currency_mismatch":
            raise CurrencyMismatch(cart_currency=_text(detail), pricing_currency=currency)
        if status == "quantity_exceeds_maximum":
            raise QuantityExceedsMaximum(maximum=limits.max_quantity, current=int(_text(detail)))
        if status == "too_many_lines":
            raise TooManyLines(maximum=limits.max_lines)
        return self._cart(owner, detail)

    async def set_quantity(
        self, owner: Owner, *, line_id: str, quantity: int, limits: Limits
    ) -> Cart:
        check_quantity(quantity, limits)
        result = await self._set_quantity(
            keys=[self.key(owner.id)], args=[line_id, quantity, self._ttl_ms]
        )
        if _text(result[0]) != "ok":
            raise LineNotFound(line_id)
        return self._cart(owner, result[1])

    async def remove_line(self, owner: Owner, *, line_id: str) -> Cart:
        result = await self._remove(keys=[self.key(owner.id)], args=[line_id, self._ttl_ms])
        if _text(result[0]) != "ok":
            raise LineNotFound(line_id)
        return self._cart(owner, result[1])

    # -- checkout --

    async def seal(self, owner: Owner, *, order_id: str) -> Cart | None:
        """Freeze the current cart for `order_id`; None if it is empty or another is pending."""
        result = await self._seal(
            keys=[self.key(owner.id), self.frozen_key(owner.id)], args=[order_id, self._ttl_ms]
        )
        if _text(result[0]) != "sealed":
            return None
        return self._cart(owner, result[1])

    async def frozen(self, owner: Owner) -> Cart | None:
        """A cart frozen for checkout but not yet stored in SQL."""
        return _parse(owner, _decode(await self._redis.hgetall(self.frozen_key(owner.id))))

    async def clear_frozen(self, owner: Owner, *, cart_id: str) -> None:
        await self._delete_if(keys=[self.frozen_key(owner.id)], args=["id", cart_id])

    # -- merge --

    async def drain(self, owner: Owner) -> Drained | None:
        """Take the cart aside for a merge; a merge left unfinished is taken over."""
        token = self._new_id()
        result = await self._drain(
            keys=[self.key(owner.id), self.merging_key(owner.id)], args=[token, self._ttl_ms]
        )
        status = _text(result[0])
        if status == "none":
            return None
        fields = _decode(_pairs(result[1]))
        cart = _parse(owner, fields)
        if cart is None:
            return None
        return Drained(cart=cart, token=fields.get("tok", ""), mine=status == "drained")

    async def finish_merge(self, owner: Owner, drained: Drained) -> None:
        """The merge committed: the anonymous cart is gone."""
        await self._delete_if(keys=[self.merging_key(owner.id)], args=["tok", drained.token])

    async def undo_drain(self, owner: Owner, drained: Drained) -> None:
        """The merge failed: put the cart back (unless a new one was started meanwhile)."""
        await self._restore(
            keys=[self.key(owner.id), self.merging_key(owner.id)],
            args=[drained.token, self._ttl_ms],
        )

    def _cart(self, owner: Owner, flat: Any) -> Cart:
        cart = _parse(owner, _decode(_pairs(flat)))
        assert cart is not None
        return cart


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: Sequence[Any]) -> dict[Any, Any]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _decode(fields: dict[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in fields.items()}


def _parse(owner: Owner, fields: dict[str, str]) -> Cart | None:
    if "id" not in fields:
        return None
    lines = []
    for name, value in fields.items():
        if name.startswith("p:"):
            quantity, position, line_id = value.split(":", 2)
            lines.append(Line(line_id, name[2:], int(quantity), int(position)))
    lines.sort(key=lambda x: x.position)
    return Cart(
        cart_id=fields["id"],
        owner=owner,
        currency=fields.get("cur") if lines else None,
        lines=tuple(lines),
        order_id=fields.get("order"),
    )
