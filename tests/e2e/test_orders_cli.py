"""`store orders` against a running store, in both modes: the operator finds a paid order,
ships part of it and then the rest, over the admin API. In the embedded mode the command mints
its own admin token (the dev secret); in the distributed mode it needs STORE_ADMIN_TOKEN and
refuses to sign with the real secret by itself."""

from __future__ import annotations

import json
from typing import Any

import httpx
from typer.testing import CliRunner

from cli.main import app
from gateway.identity import ADMIN_ROLE, issue_token
from tests.support.admin import paid_order
from tests.support.cluster import RunningStore


def run(store: RunningStore, *args: str) -> Any:
    env: dict[str, str | None] = {
        "STORE_API_URL": store.base_url,
        "STORE_ADMIN_TOKEN": None,
        "COLUMNS": "200",
    }
    secret = store.env.get("GATEWAY_JWT_SECRET")
    env["GATEWAY_JWT_SECRET"] = secret
    if store.mode == "distributed":
        assert secret is not None
        env["STORE_ADMIN_TOKEN"] = issue_token(
            "ops@shop.example", secret=secret, roles=[ADMIN_ROLE]
        )
    result = CliRunner().invoke(app, ["orders", *args], env=env, catch_exceptions=False)
    return result


async def test_find_then_ship_an_order_from_the_shell(
    client: httpx.AsyncClient, store: RunningStore
) -> None:
    order = await paid_order(client, quantity=2)
    pricing_id = order["details"]["lines"][0]["pricing_id"]

    listed = run(store, "list", "--status", "paid", "--limit", "100", "--json")
    assert listed.exit_code == 0, listed.output
    assert order["id"] in [o["id"] for o in json.loads(listed.output)["items"]]
    table = run(store, "list", "--number", order["number"])
    assert table.exit_code == 0 and order["number"] in table.output

    shown = run(store, "show", order["number"], "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["payments"][0]["status"] == "paid"
    assert run(store, "show", order["id"]).exit_code == 0

    part = run(
        store,
        "fulfil",
        order["number"],
        "--carrier",
        "DHL",
        "--tracking-number",
        "0034",
        "--tracking-url",
        "https://track.example/0034",
        "--line",
        f"{pricing_id}=1",
        "--json",
    )
    assert part.exit_code == 0, part.output
    assert json.loads(part.output)["fulfillment_status"] == "partially_fulfilled"
    rest = run(store, "fulfil", order["id"], "--carrier", "DHL", "--tracking-number", "0035")
    assert rest.exit_code == 0, rest.output
    assert "fulfilled" in rest.output

    again = run(store, "fulfil", order["id"], "--carrier", "DHL", "--tracking-number", "0036")
    assert again.exit_code == 1 and "fulfillment_exceeds_order" in again.output
    bad = run(
        store,
        "fulfil",
        order["id"],
        "--carrier",
        "X",
        "--tracking-number",
        "1",
        "--line",
        "nonsense",
    )
    assert bad.exit_code == 2 and "PRICING_ID=QUANTITY" in bad.output


def test_a_real_secret_is_never_used_to_mint_a_token() -> None:
    env = {
        "STORE_API_URL": "http://127.0.0.1:9",
        "STORE_ADMIN_TOKEN": None,
        "GATEWAY_JWT_SECRET": "a-real-secret-of-a-real-shop-0123456789",
    }
    result = CliRunner().invoke(app, ["orders", "list"], env=env)
    assert result.exit_code == 1 and "STORE_ADMIN_TOKEN" in result.output


async def test_cancel_an_unpaid_order_from_the_shell(
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
    order = checkout.json()["order"]

    canceled = run(store, "cancel", order["number"], "--json")
    assert canceled.exit_code == 0, canceled.output
    assert json.loads(canceled.output)["status"] == "canceled"
    listed = run(store, "list", "--status", "canceled", "--limit", "100", "--json")
    assert order["id"] in [o["id"] for o in json.loads(listed.output)["items"]]
    again = run(store, "fulfil", order["id"], "--carrier", "DHL", "--tracking-number", "1")
    assert again.exit_code == 1 and "order_not_paid" in again.output
