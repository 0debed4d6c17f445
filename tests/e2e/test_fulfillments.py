"""An operator ships a paid order through the admin API, in both modes: part of it, then the
rest, never more than was ordered (also when racing), each shipment published as
`orders.order.fulfilled.v1` through the orders outbox, and shown on the shopper's order."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import select

from gateway.settings import DEV_JWT_SECRET
from libs.runtime.db import new_metadata
from libs.runtime.outbox import outbox_table
from tests.e2e.helpers import assert_problem
from tests.support.admin import admin_headers, paid_order
from tests.support.cluster import RunningStore

TRACKING = "https://track.example/parcels/00340434161234567890"


def operator(store: RunningStore) -> dict[str, str]:
    return admin_headers(store.env.get("GATEWAY_JWT_SECRET", DEV_JWT_SECRET))


async def fulfilled_events(store: RunningStore, order_id: str) -> list[dict[str, Any]]:
    """The fulfilled events the orders service recorded for the order, oldest first."""
    from sqlalchemy.ext.asyncio import create_async_engine

    url = store.env.get("ORDERS_DATABASE_URL") or (
        f"sqlite+aiosqlite:///{store.log_dir / 'orders.db'}"
    )
    engine = create_async_engine(url)
    outbox = outbox_table(new_metadata())
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(outbox.c.envelope)
                .where(outbox.c.type == "orders.order.fulfilled.v1")
                .order_by(outbox.c.id)
            )
            payloads = [row[0]["payload"] for row in rows]
    finally:
        await engine.dispose()
    return [p for p in payloads if p["order_id"] == order_id]


async def test_a_partial_then_the_rest_fulfils_the_order_and_more_is_refused(
    client: httpx.AsyncClient, store: RunningStore
) -> None:
    order = await paid_order(client, quantity=3)
    assert order["fulfillment_status"] == "unfulfilled" and order["fulfillments"] == []
    pricing_id = order["details"]["lines"][0]["pricing_id"]
    admin = operator(store)
    url = f"/api/admin/orders/{order['id']}/fulfillments"

    first = await client.post(
        url,
        headers=admin,
        json={
            "carrier": "DHL",
            "tracking_number": "00340434161234567890",
            "tracking_url": TRACKING,
            "lines": [{"pricing_id": pricing_id, "quantity": 1}],
        },
    )
    assert first.status_code == 201, first.text
    assert first.json()["fulfillment_status"] == "partially_fulfilled"

    rest = await client.post(url, headers=admin, json={"carrier": "DHL", "tracking_number": "2"})
    assert rest.status_code == 201, rest.text
    assert rest.json()["fulfillment_status"] == "fulfilled"
    assert [[line["quantity"] for line in f["lines"]] for f in rest.json()["fulfillments"]] == [
        [1],
        [2],
    ]

    over = await client.post(
        url,
        headers=admin,
        json={
            "carrier": "DHL",
            "tracking_number": "3",
            "lines": [{"pricing_id": pricing_id, "quantity": 1}],
        },
    )
    assert_problem(over, 409, "fulfillment_exceeds_order")
    insecure = await client.post(
        url,
        headers=admin,
        json={"carrier": "DHL", "tracking_number": "4", "tracking_url": "http://track.example"},
    )
    assert_problem(insecure, 422)

    # The shopper sees the shipments and the tracking link on their order.
    mine = (await client.get(f"/api/store/orders/{order['id']}")).json()
    assert mine["fulfillment_status"] == "fulfilled"
    assert mine["fulfillments"][0]["tracking_url"] == TRACKING

    events = await fulfilled_events(store, order["id"])
    assert [(e["fulfillment_status"], e["actor"]) for e in events] == [
        ("partially_fulfilled", "ops@shop.example"),
        ("fulfilled", "ops@shop.example"),
    ]
    assert events[0]["tracking_url"] == TRACKING


async def test_an_unpaid_order_does_not_ship(
    client: httpx.AsyncClient, store: RunningStore
) -> None:
    from tests.e2e.helpers import billing
    from tests.support.admin import return_urls, shippable_price

    price = await shippable_price(client)
    await client.post("/api/store/cart/lines", json={"pricing_id": price["id"]})
    checkout = await client.post(
        "/api/store/checkout",
        json={**return_urls(client), "billing": billing(), "shipping": {"method": "standard"}},
    )
    assert checkout.status_code == 200, checkout.text
    order_id = checkout.json()["order"]["id"]
    refused = await client.post(
        f"/api/admin/orders/{order_id}/fulfillments",
        headers=operator(store),
        json={"carrier": "DHL", "tracking_number": "1"},
    )
    assert_problem(refused, 409, "order_not_paid")


async def test_racing_shipments_never_exceed_the_order(
    client: httpx.AsyncClient, store: RunningStore
) -> None:
    order = await paid_order(client, quantity=3)
    pricing_id = order["details"]["lines"][0]["pricing_id"]
    admin = operator(store)
    body = {
        "carrier": "DHL",
        "tracking_number": "race",
        "lines": [{"pricing_id": pricing_id, "quantity": 1}],
    }
    responses = await asyncio.gather(
        *(
            client.post(f"/api/admin/orders/{order['id']}/fulfillments", headers=admin, json=body)
            for _ in range(8)
        )
    )
    assert sorted(r.status_code for r in responses) == [201] * 3 + [409] * 5
    shown = (await client.get(f"/api/admin/orders/{order['id']}", headers=admin)).json()
    assert shown["fulfillment_status"] == "fulfilled" and len(shown["fulfillments"]) == 3
    assert len(await fulfilled_events(store, order["id"])) == 3
