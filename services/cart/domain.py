"""Carts and their rules: pure, no I/O. The storage adapters enforce the same rules atomically."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from libs.contracts.cart import CartOut, DroppedLine, FrozenCart
from libs.contracts.catalog import PricingInfo
from libs.contracts.common import FieldError, Owner
from libs.contracts.events import CartLineSnapshot
from libs.runtime.problems import Conflict, InvalidInput, NotFound, Unauthorized

# --- errors ----------------------------------------------------------------------------------


class PrincipalRequired(Unauthorized):
    code = "principal_required"
    title = "Who the cart belongs to is unknown"

    def __init__(self) -> None:
        super().__init__("The request carries no user and no anonymous shopper.")


class AnonymousIdentityMerged(Unauthorized):
    code = "anonymous_identity_merged"
    title = "This anonymous identity was merged at login"

    def __init__(self) -> None:
        super().__init__("This anonymous shopper was merged into a user; check out as the user.")


class QuantityExceedsMaximum(InvalidInput):
    code = "quantity_exceeds_maximum"
    title = "Too many of one item"

    def __init__(self, *, maximum: int, current: int = 0, field: str = "quantity") -> None:
        if current:
            message = f"a line holds at most {maximum}; this one already holds {current}"
        else:
            message = f"a line holds at most {maximum}"
        super().__init__(
            f"{field}: {message}",
            errors=[FieldError(field=field, message=message)],
            extra={"maximum": maximum, "current": current},
        )


class TooManyLines(InvalidInput):
    code = "too_many_lines"
    title = "The cart is full"

    def __init__(self, *, maximum: int) -> None:
        message = f"a cart holds at most {maximum} different prices"
        super().__init__(
            f"pricing_id: {message}",
            errors=[FieldError(field="pricing_id", message=message)],
            extra={"maximum": maximum},
        )


class UnknownPricing(InvalidInput):
    code = "unknown_pricing"
    title = "No such price"

    def __init__(self, pricing_id: str) -> None:
        message = f"no price {pricing_id!r} exists"
        super().__init__(
            f"pricing_id: {message}", errors=[FieldError(field="pricing_id", message=message)]
        )


class PricingInactive(InvalidInput):
    code = "pricing_inactive"
    title = "This price cannot be bought"

    def __init__(self, pricing_id: str) -> None:
        message = f"the price {pricing_id!r} or its product is no longer sold"
        super().__init__(
            f"pricing_id: {message}", errors=[FieldError(field="pricing_id", message=message)]
        )


class CurrencyMismatch(Conflict):
    code = "currency_mismatch"
    title = "A cart holds one currency"

    def __init__(self, *, cart_currency: str, pricing_currency: str) -> None:
        super().__init__(
            f"This cart is in {cart_currency}; the price is in {pricing_currency}. "
            f"Check out or empty the cart before buying in {pricing_currency}.",
            extra={"cart_currency": cart_currency, "pricing_currency": pricing_currency},
        )


class LineNotFound(NotFound):
    code = "line_not_found"
    title = "No such cart line"

    def __init__(self, line_id: str) -> None:
        super().__init__(f"The cart has no line {line_id!r}.")


class CartEmpty(InvalidInput):
    code = "cart_empty"
    title = "The cart is empty"

    def __init__(self) -> None:
        super().__init__("There is nothing in the cart to check out.")


class CartHasUnavailableLines(InvalidInput):
    code = "cart_has_unavailable_lines"
    title = "Some lines cannot be bought"

    def __init__(self, lines: Sequence[Line]) -> None:
        errors = [
            FieldError(
                field=f"lines.{line.line_id}",
                message=f"the price {line.pricing_id!r} is no longer sold; remove the line",
            )
            for line in lines
        ]
        super().__init__(
            "Some lines can no longer be bought; remove them and check out again.", errors=errors
        )


class OrderIdInUse(Conflict):
    code = "order_id_in_use"
    title = "Order id already used"

    def __init__(self, order_id: str) -> None:
        super().__init__(f"The order id {order_id!r} already belongs to another cart.")


# --- carts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    max_quantity: int
    max_lines: int


@dataclass(frozen=True)
class Line:
    line_id: str
    pricing_id: str
    quantity: int
    position: int  # order of addition within its cart


@dataclass(frozen=True)
class Cart:
    cart_id: str
    owner: Owner
    currency: str | None
    lines: tuple[Line, ...] = ()
    order_id: str | None = None
    order_confirmed: bool = False  # its order was created
    order_paid: bool = False

    def line(self, line_id: str) -> Line | None:
        return next((line for line in self.lines if line.line_id == line_id), None)

    def line_for(self, pricing_id: str) -> Line | None:
        return next((line for line in self.lines if line.pricing_id == pricing_id), None)

    def snapshot(self) -> list[CartLineSnapshot]:
        return [CartLineSnapshot(pricing_id=x.pricing_id, quantity=x.quantity) for x in self.lines]

    def frozen(self) -> FrozenCart:
        """The contract of a cart frozen for its order."""
        if self.order_id is None or self.currency is None:
            raise ValueError("only a checked-out cart with lines is frozen")
        return FrozenCart(
            cart_id=self.cart_id,
            order_id=self.order_id,
            owner=self.owner,
            currency=self.currency,
            lines=self.snapshot(),
        )


def check_quantity(quantity: int, limits: Limits, *, current: int = 0) -> None:
    """A line's quantity, after the change, must stay within the maximum."""
    if quantity + current > limits.max_quantity:
        raise QuantityExceedsMaximum(maximum=limits.max_quantity, current=current)


def check_add(
    cart: Cart | None, *, pricing_id: str, quantity: int, currency: str, limits: Limits
) -> int:
    """The line's quantity once `quantity` more of `pricing_id` is added; raises if not allowed."""
    lines = cart.lines if cart else ()
    if cart is not None and lines and cart.currency and cart.currency != currency:
        raise CurrencyMismatch(cart_currency=cart.currency, pricing_currency=currency)
    existing = cart.line_for(pricing_id) if cart else None
    if existing is not None:
        check_quantity(quantity, limits, current=existing.quantity)
        return existing.quantity + quantity
    check_quantity(quantity, limits)
    if len(lines) >= limits.max_lines:
        raise TooManyLines(maximum=limits.max_lines)
    return quantity


def check_pricing(info: PricingInfo | None, pricing_id: str) -> PricingInfo:
    """Only an existing, sellable price can be added."""
    if info is None:
        raise UnknownPricing(pricing_id)
    if not info.active:
        raise PricingInactive(pricing_id)
    return info


# --- merge -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MergePlan:
    """How an anonymous cart's lines go into a user's cart."""

    currency: str | None
    updates: dict[str, int] = field(default_factory=dict)  # pricing id -> new quantity
    additions: list[tuple[str, int]] = field(default_factory=list)  # new lines, in order
    moved: list[CartLineSnapshot] = field(default_factory=list)  # units that moved
    dropped: list[DroppedLine] = field(default_factory=list)


def plan_merge(
    *,
    target: Sequence[Line],
    target_currency: str | None,
    source: Sequence[Line],
    source_currency: str | None,
    limits: Limits,
) -> MergePlan:
    """Merge rule: the user's cart wins.

    - Currency: when the user's cart holds lines in another currency than the anonymous cart,
      the anonymous lines stay out (reported `currency_mismatch`); an empty user cart takes the
      anonymous cart's currency.
    - The same price adds up, capped at the per-line maximum; units over it are reported
      `quantity_capped`.
    - New prices are appended after the user's lines, in the anonymous cart's order, while the
      cart has room; the others are reported `too_many_lines`.
    """
    source = sorted(source, key=lambda line: line.position)
    currency = target_currency if target else None
    if target and source and source_currency != target_currency:
        return MergePlan(
            currency=currency,
            dropped=[
                DroppedLine(
                    pricing_id=x.pricing_id, quantity=x.quantity, reason="currency_mismatch"
                )
                for x in source
            ],
        )
    if source:
        currency = currency or source_currency
    plan = MergePlan(currency=currency)
    existing = {line.pricing_id: line.quantity for line in target}
    line_count = len(target)
    for line in source:
        if line.pricing_id in existing:
            before = plan.updates.get(line.pricing_id, existing[line.pricing_id])
            after = min(before + line.quantity, limits.max_quantity)
            if after != before:
                plan.updates[line.pricing_id] = after
            moved = after - before
        elif line_count < limits.max_lines:
            moved = min(line.quantity, limits.max_quantity)
            plan.additions.append((line.pricing_id, moved))
            line_count += 1
        else:
            plan.dropped.append(
                DroppedLine(
                    pricing_id=line.pricing_id, quantity=line.quantity, reason="too_many_lines"
                )
            )
            continue
        if moved:
            plan.moved.append(CartLineSnapshot(pricing_id=line.pricing_id, quantity=moved))
        if moved < line.quantity:
            plan.dropped.append(
                DroppedLine(
                    pricing_id=line.pricing_id,
                    quantity=line.quantity - moved,
                    reason="quantity_capped",
                )
            )
    return plan


# --- summary ---------------------------------------------------------------------------------


def summarize(cart: Cart | None, prices: Mapping[str, PricingInfo]) -> CartOut:
    """The cart as a shopper sees it: names, unit prices, subtotals, totals.

    A line whose price is unknown, no longer sold or in another currency stays visible but is
    flagged `available: false` and left out of the totals and the item count.
    """
    if cart is None:
        return CartOut()
    # Plain dicts validated once as a whole: building a model per line costs twice as much in a
    # 50-line cart.
    lines: list[dict[str, Any]] = []
    subtotal = item_count = 0
    recurring = shippable = False
    for line in sorted(cart.lines, key=lambda x: x.position):
        info = prices.get(line.pricing_id)
        available = info is not None and info.active and info.currency == cart.currency
        unit_amount = info.unit_amount if info else 0
        lines.append(
            {
                "line_id": line.line_id,
                "pricing_id": line.pricing_id,
                "product_key": info.product_key if info else "",
                "name": info.name if info else "",
                "quantity": line.quantity,
                "unit_amount": unit_amount,
                "subtotal": unit_amount * line.quantity,
                "interval": info.interval if info else None,
                "interval_count": info.interval_count if info else 1,
                "available": available,
            }
        )
        if available:
            subtotal += unit_amount * line.quantity
            item_count += line.quantity
            recurring = recurring or (info is not None and info.interval is not None)
            shippable = shippable or (info is not None and info.shippable)
    return CartOut.model_validate(
        {
            "cart_id": cart.cart_id,
            "lines": lines,
            "currency": cart.currency if cart.lines else None,
            "subtotal": subtotal,
            "total": subtotal,
            "item_count": item_count,
            "starts_subscription": recurring,
            "requires_shipping": shippable,
        }
    )
