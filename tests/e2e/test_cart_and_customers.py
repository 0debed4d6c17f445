"""The remaining cart, session and customer rows of the API table, through the gateway."""

from __future__ import annotations

import uuid

import httpx

from tests.e2e.conftest import token_for
from tests.e2e.helpers import assert_problem, billing, one_off_price
from tests.support.cluster import RunningStore


async def test_set_quantity_and_remove_a_line(client: httpx.AsyncClient) -> None:
    first, second = await one_off_price(client), await one_off_price(client, skip=1)
    await client.post("/api/store/cart/lines", json={"pricing_id": first["id"], "quantity": 1})
    cart = (
        await client.post("/api/store/cart/lines", json={"pricing_id": second["id"], "quantity": 1})
    ).json()
    line_id = cart["lines"][0]["line_id"]

    changed = await client.patch(f"/api/store/cart/lines/{line_id}", json={"quantity": 4})
    assert changed.status_code == 200, changed.text
    assert changed.json()["lines"][0]["quantity"] == 4
    assert changed.json()["item_count"] == 5
    assert_problem(
        await client.patch(f"/api/store/cart/lines/{line_id}", json={"quantity": 0}), 422
    )
    assert_problem(
        await client.patch(f"/api/store/cart/lines/{line_id}", json={"quantity": 10_000}), 422
    )

    removed = await client.delete(f"/api/store/cart/lines/{line_id}")
    assert removed.status_code == 200
    assert [line["pricing_id"] for line in removed.json()["lines"]] == [second["id"]]
    assert_problem(await client.delete(f"/api/store/cart/lines/{line_id}"), 404)
    assert_problem(
        await client.patch(f"/api/store/cart/lines/{uuid.uuid4()}", json={"quantity": 2}), 404
    )


async def test_explicit_merge_moves_the_cart_and_clears_the_cookie(
    client: httpx.AsyncClient, store: RunningStore
) -> None:
    price = await one_off_price(client)
    await client.post("/api/store/cart/lines", json={"pricing_id": price["id"], "quantity": 3})
    auth = {"authorization": f"Bearer {token_for(store, f'm-{uuid.uuid4().hex[:8]}')}"}
    merged = await client.post("/api/store/session/merge", headers=auth)
    assert merged.status_code == 200, merged.text
    assert merged.json()["merged"] is True
    assert [line["quantity"] for line in merged.json()["cart"]["lines"]] == [3]
    assert "max-age=0" in merged.headers["set-cookie"].lower()
    assert_problem(await client.post("/api/store/session/merge"), 401)  # needs a user


async def test_customers_keep_exactly_one_default(client: httpx.AsyncClient) -> None:
    first = await client.post("/api/payments/billing", json=billing("DE", name="First"))
    assert first.status_code == 201, first.text
    assert "httponly" in first.headers["set-cookie"].lower()
    second = (await client.post("/api/payments/billing", json=billing("FR", name="Second"))).json()
    assert first.json()["is_default"] is True and second["is_default"] is False

    made_default = await client.post(f"/api/store/customers/{second['id']}/default")
    assert made_default.status_code == 200 and made_default.json()["is_default"] is True
    customers = (await client.get("/api/store/customers")).json()
    assert {c["id"]: c["is_default"] for c in customers} == {
        first.json()["id"]: False,
        second["id"]: True,
    }

    assert (await client.delete(f"/api/store/customers/{second['id']}")).status_code == 204
    remaining = (await client.get("/api/store/customers")).json()
    assert [(c["id"], c["is_default"]) for c in remaining] == [(first.json()["id"], True)]
    assert_problem(
        await client.post("/api/payments/billing", json=billing("DE", email="nope")), 422
    )


async def test_organization_customers_are_for_members(
    new_client,
    store: RunningStore,  # type: ignore[no-untyped-def]
) -> None:
    org = f"org-{uuid.uuid4().hex[:8]}"
    member = {"authorization": f"Bearer {token_for(store, 'member', orgs=[org])}"}
    outsider = {"authorization": f"Bearer {token_for(store, 'outsider')}"}
    shopper = new_client()
    created = await shopper.post(
        "/api/payments/billing", json={**billing("DE"), "organization_id": org}, headers=member
    )
    assert created.status_code == 201, created.text
    listed = await shopper.get(f"/api/store/organizations/{org}/customers", headers=member)
    assert [c["id"] for c in listed.json()] == [created.json()["id"]]
    assert_problem(
        await shopper.get(f"/api/store/organizations/{org}/customers", headers=outsider), 403
    )
    assert_problem(
        await shopper.post(
            "/api/payments/billing",
            json={**billing("DE"), "organization_id": org},
            headers=outsider,
        ),
        403,
    )


async def test_an_absurd_quantity_is_refused_as_input_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    price = await one_off_price(client)
    huge = 135_993_401_920_834  # found by the fuzzer: it used to reach the stock check, a 500
    for pricing_id in (price["id"], "6rcaRa"):
        added = await client.post(
            "/api/store/cart/lines", json={"pricing_id": pricing_id, "quantity": huge}
        )
        assert_problem(added, 422)
    added = await client.post("/api/store/cart/lines", json={"pricing_id": price["id"]})
    line_id = added.json()["lines"][0]["line_id"]
    raised = await client.patch(f"/api/store/cart/lines/{line_id}", json={"quantity": huge})
    assert_problem(raised, 422)
    assert [line["quantity"] for line in (await client.get("/api/store/cart")).json()["lines"]] == [
        1
    ]
