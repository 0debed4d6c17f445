"""A dispute payments reports reaches the shopper's order through the gateway, in both modes.

The dispute events are written to the payments outbox, as payments records them; its relay
publishes them on the bus (in-process or RabbitMQ) and orders consumes them.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from libs.contracts.events import DisputeClosed, DisputeOpened
from tests.e2e.test_refunds import as_payments, paid_order
from tests.support.cluster import RunningStore


def opened(order_id: str | None, amount: int, currency: str) -> DisputeOpened:
    at = datetime.now(UTC).replace(microsecond=0)
    return DisputeOpened(
        dispute_id=str(uuid.uuid4()),
        provider="dev",
        provider_dispute_id=f"du_{uuid.uuid4().hex[:12]}",
        attempt_id=str(uuid.uuid4()),
        order_id=order_id,
        amount=amount,
        currency=currency,
        reason="product_not_received",
        status="needs_response",
        evidence_due_by=at + timedelta(days=14),
        opened_at=at,
    )


def closed(dispute: DisputeOpened, status: str) -> DisputeClosed:
    return DisputeClosed(
        **dispute.model_dump(exclude={"status"}),
        status=status,  # type: ignore[arg-type]
        closed_at=dispute.opened_at + timedelta(days=20),
    )


async def wait_for_disputes(client: httpx.AsyncClient, order_id: str, count: int) -> dict[str, Any]:
    for _ in range(200):
        order = (await client.get(f"/api/store/orders/{order_id}")).json()
        if len(order.get("disputes", [])) >= count:
            return order
        await asyncio.sleep(0.1)
    raise AssertionError(f"order {order_id} never showed {count} disputes: {order}")


async def test_disputes_reported_by_payments_show_on_the_order_and_in_the_history(
    store: RunningStore, client: httpx.AsyncClient
) -> None:
    order = await paid_order(client)
    assert order["disputes"] == []
    total, currency = order["total"], order["currency"]
    won = opened(order["id"], total, currency)
    late = opened(order["id"], 100, currency)
    unmatched = opened(None, 999, currency)
    still_open = opened(order["id"], 200, currency)

    # All under one ordering key, so handled in this order: `won` reported twice and closed;
    # `late` closed before its opened report (which must not reopen it); one without an order;
    # `still_open` last, so once it shows, so does the effect of the others.
    key = f"order:{order['id']}"
    await as_payments(store, won, won, closed(won, "won"), ordering_key=key)
    await as_payments(store, closed(late, "lost"), late, unmatched, still_open, ordering_key=key)

    shown = await wait_for_disputes(client, order["id"], 3)
    disputes = {d["id"]: d for d in shown["disputes"]}
    assert set(disputes) == {won.dispute_id, late.dispute_id, still_open.dispute_id}
    assert sorted(
        (d["amount"], d["status"], d["closed_at"] is not None) for d in disputes.values()
    ) == sorted([(total, "won", True), (100, "lost", True), (200, "needs_response", False)])
    due = disputes[still_open.dispute_id]["evidence_due_by"]
    assert datetime.fromisoformat(due) == still_open.evidence_due_by
    assert disputes[still_open.dispute_id]["currency"] == currency
    assert disputes[still_open.dispute_id]["reason"] == "product_not_received"

    history = (await client.get("/api/store/orders")).json()["items"]
    [listed] = [o for o in history if o["id"] == order["id"]]
    assert {d["id"]: d["status"] for d in listed["disputes"]} == {
        won.dispute_id: "won",
        late.dispute_id: "lost",
        still_open.dispute_id: "needs_response",
    }
