"""CartService: the verbs of the cart, for the owner a principal stands for."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.contracts.cart import CartOut, FrozenCart, MergeOut
from libs.contracts.catalog import PricingInfo
from libs.contracts.common import Owner, Principal
from libs.runtime.runtime import Runtime
from services.cart import publishes
from services.cart.domain import (
    AnonymousIdentityMerged,
    Cart,
    CartEmpty,
    CartHasUnavailableLines,
    Limits,
    MergePlan,
    OrderIdInUse,
    PrincipalRequired,
    check_pricing,
    check_quantity,
    plan_merge,
    summarize,
)
from services.cart.pricing import Prices
from services.cart.store import CartRepository, Drained, RedisCartRepository, SqlCartRepository

# How often a checkout goes round when racing checkouts keep moving the cart under it.
_CHECKOUT_ROUNDS = 3


class CartService:
    """Carts of anonymous shoppers (Redis) and users (SQL), merged on login, frozen at checkout."""

    def __init__(
        self,
        *,
        runtime: Runtime,
        anonymous: RedisCartRepository,
        users: SqlCartRepository,
        prices: Prices,
        limits: Limits,
    ) -> None:
        self.runtime = runtime
        self.anonymous = anonymous
        self.users = users
        self.prices = prices
        self.limits = limits

    # --- the current cart --------------------------------------------------------------------

    async def get_cart_summarized(self, *, principal: Principal, locale: str | None) -> CartOut:
        """The principal's current cart with names, prices and totals (empty if there is none)."""
        owner = _owner(principal)
        return await self._summarize(await self._carts(owner).get(owner), locale)

    async def add_to_cart(
        self, *, principal: Principal, pricing_id: str, quantity: int, locale: str | None
    ) -> CartOut:
        """Add `quantity` of a price; the same price adds up on its line."""
        owner = _owner(principal)
        check_quantity(quantity, self.limits)
        carts = self._carts(owner)
        # A cached price needs no look at the cart first: the summary after the change reads
        # the other lines' prices (a new shopper's cart has none). Without one, one lookup
        # covers the new price and that summary (the cart as it was before is a good guess of
        # the lines it will show), so a cold cache still costs one catalog call.
        found = await self.prices.cached([pricing_id], locale)
        if pricing_id not in found:
            before = await carts.get(owner)
            lines = [x.pricing_id for x in before.lines] if before else []
            found = await self.prices.lookup([pricing_id, *lines], locale)
        info = check_pricing(found.get(pricing_id), pricing_id)
        cart = await carts.add_line(
            owner,
            pricing_id=pricing_id,
            quantity=quantity,
            currency=info.currency,
            limits=self.limits,
        )
        return await self._summarize(cart, locale, known=found)

    async def set_line_quantity(
        self, *, principal: Principal, line_id: str, quantity: int, locale: str | None
    ) -> CartOut:
        """Set the quantity of one line."""
        owner = _owner(principal)
        cart = await self._carts(owner).set_quantity(
            owner, line_id=line_id, quantity=quantity, limits=self.limits
        )
        return await self._summarize(cart, locale)

    async def remove_line_from_cart(
        self, *, principal: Principal, line_id: str, locale: str | None
    ) -> CartOut:
        """Remove one line."""
        owner = _owner(principal)
        cart = await self._carts(owner).remove_line(owner, line_id=line_id)
        return await self._summarize(cart, locale)

    # --- merge on login ----------------------------------------------------------------------

    async def anonymous_to_user(
        self, *, anonymous_id: str, user_id: str, locale: str | None = None
    ) -> MergeOut:
        """Move the anonymous cart into the user's, once; publish the identity merge."""
        anonymous = Owner(kind="anonymous", id=anonymous_id)
        user = Owner(kind="user", id=user_id)
        if await self.users.merge_recorded(anonymous_id):
            return MergeOut(
                merged=False, cart=await self._summarize(await self.users.get(user), locale)
            )
        # A checkout of the anonymous cart that stopped halfway is completed first, so that its
        # frozen cart is in SQL and becomes the user's below.
        await self._complete_pending_freeze(anonymous)
        drained = await self.anonymous.drain(anonymous)
        try:
            result = await self._merge(anonymous, user, drained)
        except BaseException:
            if drained is not None and drained.mine:
                await self.anonymous.undo_drain(anonymous, drained)
            raise
        if drained is not None:
            if result.first:
                await self.anonymous.finish_merge(anonymous, drained)
            elif drained.mine and result.moved_token != drained.token:
                # Another request merged first, and not this copy: it is a cart started after
                # that merge, so it goes back where it was.
                await self.anonymous.undo_drain(anonymous, drained)
        cart = result.cart or await self.users.get(user)
        return MergeOut(
            merged=result.first,
            cart=await self._summarize(cart, locale),
            dropped=result.plan.dropped if result.plan else [],
        )

    async def _merge(self, anonymous: Owner, user: Owner, drained: Drained | None) -> _Merged:
        source = drained.cart if drained is not None else None
        async with self.runtime.transaction() as session:
            first = await self.users.record_merge(
                session,
                anonymous_id=anonymous.id,
                user_id=user.id,
                drain_token=drained.token if drained else None,
            )
            if not first:
                token = await self.users.merged_drain_token(session, anonymous.id)
                return _Merged(first=False, moved_token=token)
            cart: Cart | None = None
            plan: MergePlan | None = None
            if source is not None and source.lines:
                locked = await self.users.lock_open(session, user, create=True)
                assert locked is not None
                plan = plan_merge(
                    target=locked.cart.lines,
                    target_currency=locked.cart.currency,
                    source=source.lines,
                    source_currency=source.currency,
                    limits=self.limits,
                )
                cart = await self.users.apply_merge(session, locked, plan)
                await self.users.set_merge_cart(
                    session, anonymous_id=anonymous.id, cart_id=cart.cart_id
                )
                if plan.moved:
                    await self.runtime.record(
                        session,
                        publishes.cart_merged(
                            cart=cart, anonymous_id=anonymous.id, user_id=user.id, moved=plan.moved
                        ),
                    )
            await self.users.reown_frozen(session, anonymous_id=anonymous.id, user_id=user.id)
            await self.runtime.record(
                session, publishes.anonymous_merged(anonymous_id=anonymous.id, user_id=user.id)
            )
        return _Merged(first=True, cart=cart, plan=plan)

    # --- checkout ----------------------------------------------------------------------------

    async def checkout(self, *, principal: Principal, order_id: str) -> FrozenCart:
        """Freeze the current cart for `order_id`, once; a retry gets the same frozen cart.

        Racing checkouts of one cart all get the first one's order id. With an empty current
        cart, the owner's latest frozen cart is returned again until its order is paid
        (`orders.order.paid.v1`): a checkout that failed halfway can be completed, and a retry
        after a successful one gets the same order. An anonymous id that was merged into a
        user checks out nothing: a copy of its cookie must not place orders for that user.
        """
        owner = _owner(principal)
        if owner.kind == "anonymous" and await self.users.merge_recorded(owner.id):
            raise AnonymousIdentityMerged()
        async with self.runtime.transaction() as session:
            done = await self.users.find_by_order(session, order_id)
        if done is not None:  # the same checkout again
            if done.owner != owner:
                raise OrderIdInUse(order_id)
            return done.frozen()
        if owner.kind == "anonymous":
            frozen = await self._freeze_anonymous(owner, order_id)
        else:
            frozen = await self._freeze_user(owner, order_id)
        if frozen is not None:
            return frozen.frozen()
        async with self.runtime.transaction() as session:
            latest = await self.users.latest_frozen(session, owner)
        if latest is not None and not latest.order_paid:
            return latest.frozen()
        raise CartEmpty()

    async def _freeze_user(self, owner: Owner, order_id: str) -> Cart | None:
        current = await self.users.get(owner)
        if current is None or not current.lines:
            return None
        await self._ensure_available(current)
        try:
            async with self.runtime.transaction() as session:
                frozen = await self.users.freeze_open(session, owner, order_id=order_id)
                if frozen is not None:
                    await self.runtime.record(session, publishes.cart_checked_out(frozen))
        except IntegrityError:
            raise OrderIdInUse(order_id) from None
        return frozen

    async def _freeze_anonymous(self, owner: Owner, order_id: str) -> Cart | None:
        for _ in range(_CHECKOUT_ROUNDS):
            await self._complete_pending_freeze(owner)
            current = await self.anonymous.get(owner)
            if current is None or not current.lines:
                # A racing checkout may have sealed the cart between the two reads above and
                # not yet committed it to SQL: its frozen copy is still in Redis, so complete
                # that move here. The copy is cleared only after the commit, so when it is
                # gone the caller finds the cart in SQL.
                return await self._complete_pending_freeze(owner)
            await self._ensure_available(current)
            sealed = await self.anonymous.seal(owner, order_id=order_id)
            if sealed is None:  # another checkout sealed it meanwhile: complete that one
                continue
            stored = await self._store_frozen(sealed)
            await self.anonymous.clear_frozen(owner, cart_id=sealed.cart_id)
            return stored
        return None

    async def _complete_pending_freeze(self, owner: Owner) -> Cart | None:
        """Move an anonymous cart frozen for checkout (by this or a racing request) into SQL."""
        pending = await self.anonymous.frozen(owner)
        if pending is None:
            return None
        stored = await self._store_frozen(pending)
        await self.anonymous.clear_frozen(owner, cart_id=pending.cart_id)
        return stored

    async def _store_frozen(self, cart: Cart) -> Cart:
        async with self.runtime.transaction() as session:
            stored, inserted = await self.users.store_frozen(session, cart)
            if inserted:
                await self.runtime.record(session, publishes.cart_checked_out(stored))
        return stored

    async def _ensure_available(self, cart: Cart) -> None:
        """Refuse to freeze a cart that cannot become an order (a line no longer sold)."""
        prices = await self.prices.lookup([x.pricing_id for x in cart.lines], None)
        unavailable = [
            line
            for line in cart.lines
            if (info := prices.get(line.pricing_id)) is None
            or not info.active
            or info.currency != cart.currency
        ]
        if unavailable:
            raise CartHasUnavailableLines(unavailable)

    async def confirm_order(self, session: AsyncSession, *, order_id: str) -> None:
        """The order of a frozen cart was created."""
        await self.users.confirm_order(session, order_id)

    async def mark_order_paid(self, session: AsyncSession, *, order_id: str) -> None:
        """The order of a frozen cart was paid: checking out an empty cart is now an error."""
        await self.users.mark_paid(session, order_id)

    # --- price cache -------------------------------------------------------------------------

    async def forget_pricing(self, *, pricing_id: str) -> None:
        """Drop cached copies of a price that changed."""
        await self.prices.forget_pricing(pricing_id)

    async def forget_product(self, *, product_key: str) -> None:
        """Drop cached prices of a product that changed."""
        await self.prices.forget_product(product_key)

    # --- helpers -----------------------------------------------------------------------------

    def _carts(self, owner: Owner) -> CartRepository:
        return self.anonymous if owner.kind == "anonymous" else self.users

    async def _summarize(
        self,
        cart: Cart | None,
        locale: str | None,
        *,
        known: dict[str, PricingInfo] | None = None,
    ) -> CartOut:
        if cart is None or not cart.lines:
            return summarize(cart, {})
        prices = await self.prices.lookup([x.pricing_id for x in cart.lines], locale, known=known)
        return summarize(cart, prices)


@dataclass(frozen=True)
class _Merged:
    first: bool  # this request merged the anonymous id (else one before it had)
    cart: Cart | None = None
    plan: MergePlan | None = None
    moved_token: str | None = None  # which Redis copy the first merge moved


def _owner(principal: Principal | None) -> Owner:
    owner = principal.owner if principal is not None else None
    if owner is None:
        raise PrincipalRequired()
    return owner
