"""An operator refunds a paid order through `/api/admin/*`, in both modes: a third, then the
rest, then nothing more (409 `refund_exceeds_paid`); 20 concurrent parts never exceed what was
paid; a retried Idempotency-Key is the same refund; the shopper's order shows each refund."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from gateway.identity import ADMIN_ROLE, issue_token
from gateway.settings import DEV_JWT_SECRET
from tests.e2e.helpers import assert_problem
from tests.e2e.test_refunds import paid_order, wait_for_refunds
from tests.support.cluster import RunningStore


def admin_headers(store: RunningStore, key: str | None = None) -> dict[str, str]:
    secret = store.env.get("GATEWAY_JWT_SECRET", DEV_JWT_SECRET)
    token = issue_token("operator-e2e", secret=secret, roles=[ADMIN_ROLE])
    return {"authorization": f"Bearer {token}", "idempotency-key": key or str(uuid.uuid4())}


async def refund(
    store: RunningStore, order_id: str, key: str | None = None, **body: Any
) -> httpx.Response:
    # An admin is a caller of its own: no shopper cookie goes with it.
    async with httpx.AsyncClient(base_url=store.base_url, timeout=30) as admin:
        return await admin.post(
            f"/api/admin/orders/{order_id}/refunds",
            json={"reason": "goodwill", **body},
            headers=admin_headers(store, key),
        )


async def test_a_third_then_the_rest_then_refused_and_the_order_shows_both(
    store: RunningStore, client: httpx.AsyncClient
) -> None:
    order = await paid_order(client)
    total = order["total"]
    key = str(uuid.uuid4())
    third = await refund(store, order["id"], key, amount=total // 3)
    assert third.status_code == 201, third.text
    body = third.json()
    assert (body["amount"], body["status"], body["reason"], body["note"]) == (
        total // 3,
        "succeeded",
        "operator",
        "goodwill",
    )
    again = await refund(store, order["id"], key, amount=total // 3)  # a retry: the same one
    assert (again.status_code, again.json()["id"]) == (201, body["id"])

    rest = await refund(store, order["id"])
    assert rest.status_code == 201, rest.text
    assert rest.json()["amount"] == total - total // 3

    refused = assert_problem(await refund(store, order["id"]), 409, "refund_exceeds_paid")
    assert (refused["paid"], refused["refunded"]) == (total, total)

    shown = await wait_for_refunds(client, order["id"], 2)
    assert shown["refunded_amount"] == total
    assert sorted((r["amount"], r["status"], r["reason"]) for r in shown["refunds"]) == sorted(
        [(total // 3, "succeeded", "operator"), (total - total // 3, "succeeded", "operator")]
    )


async def test_twenty_concurrent_parts_never_exceed_what_was_paid(
    store: RunningStore, client: httpx.AsyncClient
) -> None:
    order = await paid_order(client)
    total = order["total"]
    part = total // 8 + 1  # 7 fit, the other 13 must be refused
    answers = await asyncio.gather(*(refund(store, order["id"], amount=part) for _ in range(20)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] * (total // part) + [409] * (20 - total // part), [
        a.text for a in answers if a.status_code not in (201, 409)
    ]
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"refund_exceeds_paid"}
    shown = await wait_for_refunds(client, order["id"], total // part)
    assert shown["refunded_amount"] == part * (total // part) <= total


async def test_an_unpaid_order_cannot_be_refunded(store: RunningStore) -> None:
    assert_problem(await refund(store, str(uuid.uuid4())), 409, "order_not_paid")


async def test_lines_are_refunded_at_their_frozen_price_with_tax(
    store: RunningStore, client: httpx.AsyncClient
) -> None:
    order = await paid_order(client)  # 2 units of one price, shipped
    [line] = order["details"]["lines"]
    one = await refund(
        store, order["id"], lines=[{"pricing_id": line["pricing_id"], "quantity": 1}]
    )
    assert one.status_code == 201, one.text
    assert one.json()["amount"] == line["total"] // 2
    rest = await refund(
        store,
        order["id"],
        lines=[
            {"pricing_id": line["pricing_id"], "quantity": 1},
            {"pricing_id": "shipping", "quantity": 1},
        ],
    )
    assert rest.status_code == 201, rest.text
    # The two halves add up to the line's total exactly; shipping is refunded with its tax.
    assert one.json()["amount"] + rest.json()["amount"] == order["total"]
    assert_problem(
        await refund(store, order["id"], lines=[{"pricing_id": line["pricing_id"], "quantity": 1}]),
        409,
        "refund_exceeds_ordered",
    )
