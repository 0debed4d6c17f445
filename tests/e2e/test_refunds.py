"""A refund payments reports reaches the shopper's order through the gateway, in both modes.

The refund events are written to the payments outbox, as payments records them; its relay
publishes them on the bus (in-process or RabbitMQ) and orders consumes them.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from libs.contracts.envelope import Event
from libs.contracts.events import RefundFailed, RefundSucceeded
from libs.runtime.db import new_metadata
from libs.runtime.outbox import outbox_table, record_event
from tests.e2e.helpers import billing, one_off_price
from tests.e2e.test_checkout import SHIPPING, URLS, press, wait_for_order
from tests.support.cluster import RunningStore


async def as_payments(store: RunningStore, *events: Event, ordering_key: str) -> None:
    """Record events in the payments outbox, in one transaction, as payments would."""
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    url = store.env.get("PAYMENTS_DATABASE_URL") or (
        f"sqlite+aiosqlite:///{store.log_dir / 'payments.db'}"
    )
    engine = create_async_engine(url)
    outbox = outbox_table(new_metadata())
    try:
        async with engine.begin() as connection:
            session = AsyncSession(bind=connection)
            for payload in events:
                await record_event(
                    session, outbox, payload, producer="payments", ordering_key=ordering_key
                )
            await session.flush()
    finally:
        await engine.dispose()


async def paid_order(client: httpx.AsyncClient) -> dict[str, Any]:
    price = await one_off_price(client)
    line = {"pricing_id": price["id"], "quantity": 2}
    assert (await client.post("/api/store/cart/lines", json=line)).status_code == 200
    response = await client.post(
        "/api/store/checkout", json={**URLS, **SHIPPING, "billing": billing("DE")}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    await press(client, body["payment"]["checkout_url"], "pay")
    return await wait_for_order(client, body["order"]["id"], paid=True)


def refund(
    event: type[RefundSucceeded] | type[RefundFailed],
    order: dict[str, Any],
    amount: int,
    refund_id: str | None = None,
) -> Any:
    at = datetime.now(UTC)
    common = {
        "refund_id": refund_id or str(uuid.uuid4()),
        "attempt_id": str(uuid.uuid4()),
        "order_id": order["id"],
        "amount": amount,
        "currency": order["currency"],
        "provider": "dev",
        "reason": "operator",
        "created_at": at,
    }
    if event is RefundSucceeded:
        return RefundSucceeded(**common, succeeded_at=at)
    return RefundFailed(**common, status="failed", failure_reason="declined", failed_at=at)


async def wait_for_refunds(client: httpx.AsyncClient, order_id: str, count: int) -> dict[str, Any]:
    for _ in range(200):
        order = (await client.get(f"/api/store/orders/{order_id}")).json()
        if len(order.get("refunds", [])) >= count:
            return order
        await asyncio.sleep(0.1)
    raise AssertionError(f"order {order_id} never showed {count} refunds: {order}")


async def test_refunds_reported_by_payments_show_on_the_order_and_in_the_history(
    store: RunningStore, client: httpx.AsyncClient
) -> None:
    order = await paid_order(client)
    assert (order["refunded_amount"], order["refunds"]) == (0, [])
    first = refund(RefundSucceeded, order, 100)
    second = refund(RefundSucceeded, order, order["total"] - 300)
    failed = refund(RefundFailed, order, 200)

    # The first refund again (a republished event) and a late failure of it, both handled
    # before `second` (one ordering key): once `second` shows, so does their effect.
    key = f"order:{order['id']}"
    await as_payments(store, first, failed, ordering_key=key)
    late = refund(RefundFailed, order, 100, refund_id=first.refund_id)
    await as_payments(store, first, late, second, ordering_key=key)

    shown = await wait_for_refunds(client, order["id"], 3)
    assert shown["refunded_amount"] == order["total"] - 200
    statuses = {r["id"]: (r["amount"], r["status"]) for r in shown["refunds"]}
    assert statuses == {
        first.refund_id: (100, "succeeded"),
        second.refund_id: (order["total"] - 300, "succeeded"),
        failed.refund_id: (200, "failed"),
    }
    history = (await client.get("/api/store/orders")).json()["items"]
    [listed] = [o for o in history if o["id"] == order["id"]]
    assert listed["refunded_amount"] == order["total"] - 200
