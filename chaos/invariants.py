"""The invariants, read from each service's database and from a private queue bound on the
run's exchange (`PaidProbe`: the paid events counted as a consumer receives them)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from bench.checkout import PaidProbe


@dataclass
class Verdict:
    """What the databases and the bus say after a fault."""

    paid_attempts: int = 0
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    unpublished: int = 0
    parked: int = 0

    @property
    def consistent(self) -> bool:
        return not self.lost and not self.doubled and self.unpublished == 0


async def _rows(server_url: str, database: str, query: str) -> list[Any]:
    import asyncpg

    connection = await asyncpg.connect(server_url.rsplit("/", 1)[0] + "/" + database, timeout=5)
    try:
        return list(await connection.fetch(query))
    finally:
        await connection.close()


async def check(
    server_url: str,
    databases: dict[str, str],
    events: PaidProbe,
    client_paid: dict[str, str],
) -> Verdict:
    """Every paid attempt gives exactly one paid order and one paid event; no order paid twice
    or without a paid attempt; one order per cart; nothing left in an outbox."""
    verdict = Verdict()
    attempts = await _rows(
        server_url,
        databases["payments"],
        "SELECT id, order_id FROM payment_attempts WHERE status = 'paid'",
    )
    orders = {
        r["id"]: r
        for r in await _rows(
            server_url, databases["orders"], "SELECT id, cart_id, paid, paid_attempt_id FROM orders"
        )
    }
    verdict.paid_attempts = len(attempts)
    paid_attempts_by_order: dict[str, set[str]] = defaultdict(set)
    for attempt in attempts:
        paid_attempts_by_order[attempt["order_id"]].add(attempt["id"])
    for order_id, attempt_ids in paid_attempts_by_order.items():
        order = orders.get(order_id)
        if order is None or order["paid"] is None:
            verdict.lost.append(f"order {order_id}: attempt paid, order not paid")
        elif not events.event_ids.get(order_id):
            verdict.lost.append(f"order {order_id}: paid, no paid event")
        if len(attempt_ids) > 1:
            verdict.doubled.append(f"order {order_id}: {len(attempt_ids)} paid attempts")
    for order_id, event_ids in events.event_ids.items():
        if len(event_ids) > 1:
            verdict.doubled.append(f"order {order_id}: {len(event_ids)} paid events")
    for order_id, order in orders.items():
        if order["paid"] is not None and order_id not in paid_attempts_by_order:
            verdict.doubled.append(f"order {order_id}: paid without a paid attempt")
    for order_id in client_paid:
        if order_id not in paid_attempts_by_order:
            verdict.lost.append(f"order {order_id}: the pay page said paid, no paid attempt")
    carts = await _rows(
        server_url,
        databases["cart"],
        "SELECT external_id, order_id FROM carts WHERE order_id IS NOT NULL",
    )
    per_cart: dict[str, int] = defaultdict(int)
    for order in orders.values():
        per_cart[order["cart_id"]] += 1
    for cart in carts:
        if per_cart.get(cart["external_id"], 0) > 1:
            verdict.doubled.append(f"cart {cart['external_id']}: several orders")
    for database in databases.values():
        [counts] = await _rows(
            server_url,
            database,
            "SELECT count(*) FILTER (WHERE parked_at IS NULL) AS unpublished,"
            " count(*) FILTER (WHERE parked_at IS NOT NULL) AS parked"
            " FROM outbox WHERE published_at IS NULL",
        )
        verdict.unpublished += int(counts["unpublished"])
        verdict.parked += int(counts["parked"])
    return verdict
