"""The stock checks of the store's workflows: the cart refuses more than is available, and
checkout refuses a sold-out cart while it can still be changed (docs/stock.md).

These are courtesy checks on a moment's numbers; the guard is checkout's reservation at
catalog, which holds all lines atomically or none. Only products that track stock cost more
than the one catalog call: their cart quantity is read to add the new units to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import structlog

from libs.contracts.cart import CartOut
from libs.contracts.catalog import StockCheckOut, StockLineIn
from libs.runtime.problems import InvalidInput, ProblemError

if TYPE_CHECKING:
    from gateway.clients import Clients
    from gateway.identity import Caller

log = structlog.get_logger(__name__)


class OutOfStock(ProblemError):
    status, code, title = 409, "out_of_stock", "Not enough in stock"


def out_of_stock(wanted: Mapping[str, tuple[int, int]]) -> OutOfStock:
    """409 naming the products: product key → (units wanted, units available)."""
    items = sorted(wanted.items())
    listed = ", ".join(f"{key} ({want} wanted, {free} left)" for key, (want, free) in items)
    return OutOfStock(
        f"Not enough in stock: {listed}.",
        errors=InvalidInput.for_field("quantity", "more than is in stock").errors,
        extra={
            "products": [
                {"product_key": key, "requested": want, "available": free}
                for key, (want, free) in items
            ]
        },
    )


def order_stock_lines(details: Mapping[str, Any]) -> list[StockLineIn]:
    """What an order holds: its lines' prices and quantities (catalog knows their products)."""
    return [
        StockLineIn(pricing_id=line["pricing_id"], quantity=line["quantity"])
        for line in details.get("lines", [])
    ]


async def check_line_stock(
    clients: Clients,
    caller: Caller,
    pricing_id: str | None,
    *,
    add: int = 0,
    line_id: str | None = None,
    quantity: int | None = None,
) -> None:
    """409 `out_of_stock` when adding `add` units of a price (or setting line `line_id` to
    `quantity`) would put more in the cart than is available."""
    cart: CartOut | None = None
    if pricing_id is None:  # a quantity change: which price, and is it a raise?
        cart = await _cart(clients, caller)
        line = next((x for x in cart.lines if x.line_id == line_id), None)
        if line is None or quantity is None or quantity <= line.quantity:
            return  # the cart answers for an unknown line; fewer units are always fine
        pricing_id, add = line.pricing_id, quantity - line.quantity
    checked = await _check(clients, [StockLineIn(pricing_id=pricing_id, quantity=add)])
    if checked is None or not checked.lines[0].tracked:
        return
    if cart is None:
        cart = await _cart(clients, caller)
    in_cart = sum(x.quantity for x in cart.lines if x.pricing_id == pricing_id)
    found = checked.lines[0]
    free = found.available or 0
    if in_cart + add > free:
        raise out_of_stock({found.product_key: (in_cart + add, free)})


async def check_cart_stock(clients: Clients, cart: CartOut) -> None:
    """409 `out_of_stock` naming every product of the cart that is short right now."""
    lines = [
        StockLineIn(pricing_id=x.pricing_id, quantity=x.quantity) for x in cart.lines if x.available
    ]
    if not lines:
        return
    checked = await _check(clients, lines)
    if checked is None or not checked.short:
        return
    wanted: dict[str, tuple[int, int]] = {}
    for line in checked.lines:
        if line.product_key in checked.short:
            want, _ = wanted.get(line.product_key, (0, 0))
            wanted[line.product_key] = (want + line.quantity, line.available or 0)
    raise out_of_stock(wanted)


async def _check(clients: Clients, lines: Sequence[StockLineIn]) -> StockCheckOut | None:
    try:
        return await clients.catalog.check_stock(list(lines))
    except ProblemError as exc:
        if exc.code == "unknown_product":
            return None  # an unknown price: the cart answers for it in its own words
        if exc.status >= 500:
            # Catalog is down: the cart still takes the line (from its price cache) as it did
            # before stock, and checkout's reservation guards what is sold.
            log.warning("stock.check_unavailable", error=str(exc))
            return None
        raise


async def _cart(clients: Clients, caller: Caller) -> CartOut:
    if caller.user_id is None and caller.anonymous_id is None:
        return CartOut()
    return (await clients.cart.summary(caller.principal, locale=None)).parse()
