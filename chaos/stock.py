"""Stock under faults: the product the shoppers buy tracks stock (plenty of it, so no checkout
is refused), and after every fault the stock must agree with the orders.

- the counter is the ledger: each product's `reserved` is the sum of its held reservations;
- nothing is sold twice or lost: `on_hand` + the units sold = what was set at the start;
- every paid order of the product has its sale, and no paid order still holds stock;
- no leaked hold: a held reservation belongs to an order that is neither paid nor canceled
  (those of checkouts that never paid wait for their deadline, as designed: they are counted,
  not failed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from chaos.invariants import _rows
from tests.support.cluster import RunningStore

ON_HAND = 1_000_000


@dataclass
class StockVerdict:
    problems: list[str] = field(default_factory=list)
    held_unpaid: int = 0  # holds of checkouts that never paid (released at their deadline)


async def track(store: RunningStore, pricing_id: str, on_hand: int = ON_HAND) -> str:
    """Make the product of `pricing_id` track stock, through the admin API; its key."""
    from gateway.identity import issue_token

    token = issue_token("chaos", secret=store.env["GATEWAY_JWT_SECRET"], roles=["store:admin"])
    async with httpx.AsyncClient(base_url=store.base_url, timeout=15) as http:
        page = (await http.get("/api/store/products", params={"limit": 100})).json()
        key = next(
            p["key"] for p in page["items"] if any(x["id"] == pricing_id for x in p["prices"])
        )
        answer = await http.put(
            f"/api/admin/products/{key}/stock",
            json={"on_hand": on_hand},
            headers={"authorization": f"Bearer {token}"},
        )
        answer.raise_for_status()
    return str(key)


async def check_stock(
    server_url: str, databases: dict[str, str], pricing_id: str, initial: int = ON_HAND
) -> StockVerdict:
    verdict = StockVerdict()
    catalog, orders = databases["catalog"], databases["orders"]
    levels = await _rows(
        server_url,
        catalog,
        "SELECT l.product_id, l.on_hand, l.reserved,"
        " coalesce(sum(r.quantity) FILTER (WHERE r.status = 'held'), 0) AS held,"
        " coalesce(sum(r.quantity) FILTER (WHERE r.status = 'sold'), 0) AS sold"
        " FROM stock_levels l LEFT JOIN stock_reservations r ON r.product_id = l.product_id"
        " WHERE l.tracked GROUP BY l.product_id, l.on_hand, l.reserved",
    )
    for level in levels:
        if level["reserved"] != level["held"]:
            verdict.problems.append(
                f"stock {level['product_id']}: reserved {level['reserved']} != held {level['held']}"
            )
        if level["on_hand"] + level["sold"] != initial:
            verdict.problems.append(
                f"stock {level['product_id']}: on hand {level['on_hand']} + sold {level['sold']}"
                f" != {initial}"
            )
    reservations = {
        (r["order_id"]): r["status"]
        for r in await _rows(server_url, catalog, "SELECT order_id, status FROM stock_reservations")
    }
    paid_or_canceled = await _rows(
        server_url,
        orders,
        "SELECT id, paid IS NOT NULL AS paid, canceled_at IS NOT NULL AS canceled FROM orders"
        f" WHERE (paid IS NOT NULL OR canceled_at IS NOT NULL) AND details::text LIKE '%{pricing_id}%'",
    )
    closed = set()
    for order in paid_or_canceled:
        closed.add(order["id"])
        status = reservations.get(order["id"])
        if order["paid"] and status != "sold":
            verdict.problems.append(f"order {order['id']}: paid, its stock is {status}")
        if order["canceled"] and status == "held":
            verdict.problems.append(f"order {order['id']}: canceled, its stock still held")
    verdict.held_unpaid = sum(
        1
        for order_id, status in reservations.items()
        if status == "held" and order_id not in closed
    )
    return verdict
