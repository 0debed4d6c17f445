"""Shipping through the gateway, in both modes: the methods of a destination, a cart that
requires shipping, the refusals, and orders whose totals hold shipping and its tax exactly.

The example catalog (deploy/products/example.json): standard 4.90 € (free from 50.00 €, every
country), express 12.90 € (DE, AT, CH, FR, BE, NL, LU); DE 19 % inclusive, CA 5 % exclusive.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import httpx

from tests.e2e.helpers import assert_problem, billing, products
from tests.e2e.test_checkout import URLS, press, wait_for_order


def half_up(value: Fraction) -> int:
    return (2 * value.numerator + value.denominator) // (2 * value.denominator)


def inclusive_tax(gross: int, percent: int) -> int:
    return gross - half_up(Fraction(gross * 100, 100 + percent))


def exclusive_tax(net: int, percent: int) -> int:
    return half_up(Fraction(net * percent, 100))


async def price_of(client: httpx.AsyncClient, key: str) -> dict[str, Any]:
    product = next(p for p in await products(client) if p["key"] == key)
    return next(p for p in product["prices"] if p["interval"] is None)


async def add(client: httpx.AsyncClient, key: str, quantity: int = 1) -> dict[str, Any]:
    price = await price_of(client, key)
    added = await client.post(
        "/api/store/cart/lines", json={"pricing_id": price["id"], "quantity": quantity}
    )
    assert added.status_code == 200, added.text
    return price


async def checkout(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post("/api/store/checkout", json={**URLS, **body})


def address(country: str, **overrides: Any) -> dict[str, Any]:
    return {
        "name": "Charles Babbage",
        "phone": "+1 416 555 0100",
        "line1": "100 Queen St W",
        "city": "Toronto",
        "postal_code": "M5H 2N2",
        "state": "ON",
        "country": country,
        **overrides,
    }


async def test_the_methods_that_ship_there_are_listed_with_their_prices(
    client: httpx.AsyncClient,
) -> None:
    listed = await client.get(
        "/api/store/shipping-methods", params={"country": "DE", "currency": "EUR", "locale": "de"}
    )
    assert listed.status_code == 200, listed.text
    by_code = {m["code"]: m for m in listed.json()["items"]}
    assert [m["code"] for m in listed.json()["items"]] == ["standard", "express"]
    standard, express = by_code["standard"], by_code["express"]
    assert (standard["name"], standard["amount"], standard["free_over"]) == (
        "Standardversand",
        490,
        5000,
    )
    assert (standard["delivery_days_min"], standard["delivery_days_max"]) == (2, 5)
    assert (express["amount"], express["free_over"], express["currency"]) == (1290, None, "EUR")

    far = await client.get(
        "/api/store/shipping-methods", params={"country": "us", "currency": "EUR"}
    )
    assert [m["code"] for m in far.json()["items"]] == ["standard"]
    # No method is priced in yen: nothing ships in JPY.
    yen = await client.get(
        "/api/store/shipping-methods", params={"country": "DE", "currency": "JPY"}
    )
    assert yen.status_code == 200 and yen.json()["items"] == []
    assert_problem(
        await client.get(
            "/api/store/shipping-methods", params={"country": "XX", "currency": "EUR"}
        ),
        422,
        "unknown_country",
    )


async def test_the_cart_says_when_it_requires_shipping(new_client) -> None:  # type: ignore[no-untyped-def]
    goods, download = new_client(), new_client()
    await add(goods, "cap")
    assert (await goods.get("/api/store/cart")).json()["requires_shipping"] is True
    await add(download, "guide-ebook")
    assert (await download.get("/api/store/cart")).json()["requires_shipping"] is False


async def test_shippable_goods_without_shipping_are_refused_and_the_cart_stays(
    client: httpx.AsyncClient,
) -> None:
    await add(client, "mug")
    before = (await client.get("/api/store/cart")).json()
    refused = assert_problem(
        await checkout(client, billing=billing("DE")), 422, "shipping_required"
    )
    assert "shipping" in refused["detail"]
    assert refused["errors"][0]["field"] == "shipping"
    # Nothing was frozen or ordered: the shopper adds shipping and checks out the same cart.
    assert (await client.get("/api/store/cart")).json() == before
    assert (await client.get("/api/store/orders")).json()["items"] == []
    done = await checkout(client, billing=billing("DE"), shipping={"method": "standard"})
    assert done.status_code == 200, done.text


async def test_a_method_that_does_not_ship_there_is_refused(client: httpx.AsyncClient) -> None:
    await add(client, "cap")
    for body in (
        {"billing": billing("US"), "shipping": {"method": "express"}},
        {"billing": billing("DE"), "shipping": {"method": "express", "address": address("CA")}},
        {"billing": billing("DE"), "shipping": {"method": "teleport"}},
    ):
        problem = assert_problem(await checkout(client, **body), 422, "shipping_unavailable")
        assert problem["errors"][0]["field"] == "shipping.method"
    assert (await client.get("/api/store/orders")).json()["items"] == []


async def test_shipping_for_a_cart_that_ships_nothing_is_refused(client: httpx.AsyncClient) -> None:
    await add(client, "guide-ebook")
    body = {"billing": billing("DE"), "shipping": {"method": "standard"}}
    assert_problem(await checkout(client, **body), 422, "shipping_not_required")
    done = await checkout(client, billing=billing("DE"))
    assert done.status_code == 200, done.text
    assert done.json()["order"]["details"]["shipping"] is None


async def test_inclusive_tax_express_to_the_billing_address_is_in_the_total_and_paid(
    client: httpx.AsyncClient,
) -> None:
    cap = await add(client, "cap")
    body = await checkout(client, billing=billing("DE"), shipping={"method": "express"})
    assert body.status_code == 200, body.text
    order = body.json()["order"]
    details = order["details"]
    shipping = details["shipping"]
    # The address defaults to the billing address, to the billing name.
    assert shipping["address"] == {**billing("DE")["address"], "line2": None, "state": None,
                                   "name": "Ada Lovelace", "phone": None}  # fmt: skip
    assert shipping["method"]["code"] == "express" and shipping["method"]["name"] == "Express"
    # Taxed like a line: 19 % included in 12.90 €, so the total grows by the price only.
    shipping_tax = inclusive_tax(1290, 19)
    assert (shipping["amount"], shipping["tax"], shipping["total"]) == (1290, shipping_tax, 1290)
    line_tax = inclusive_tax(cap["unit_amount"], 19)
    assert details["tax"] == line_tax + shipping_tax
    assert order["total"] == details["total"] == cap["unit_amount"] + 1290
    assert [t["amount"] for t in details["tax_lines"]] == [line_tax + shipping_tax]

    await press(client, body.json()["payment"]["checkout_url"], "pay")
    paid = await wait_for_order(client, order["id"], paid=True)
    assert paid["details"]["shipping"] == shipping


async def test_exclusive_tax_of_the_destination_is_added_to_shipping(
    client: httpx.AsyncClient,
) -> None:
    cap = await add(client, "cap")
    body = {"billing": billing("CA"), "shipping": {"method": "standard", "address": address("CA")}}
    response = await checkout(client, **body)
    assert response.status_code == 200, response.text
    details = response.json()["order"]["details"]
    shipping = details["shipping"]
    assert shipping["address"] == address("CA", line2=None)
    gst = exclusive_tax(490, 5)  # 24.5 cents, half up
    assert gst == 25
    assert (shipping["amount"], shipping["tax"], shipping["total"]) == (490, gst, 490 + gst)
    line_gst = exclusive_tax(cap["unit_amount"], 5)
    assert details["total"] == response.json()["order"]["total"]
    assert details["total"] == cap["unit_amount"] + line_gst + 490 + gst
    await press(client, response.json()["payment"]["checkout_url"], "pay")
    await wait_for_order(client, response.json()["order"]["id"], paid=True)


async def test_shipping_is_taxed_where_it_goes_and_free_over_the_threshold(
    new_client,  # type: ignore[no-untyped-def]
) -> None:
    # Billed in Germany (19 % inclusive on the goods), shipped to Canada (5 % exclusive).
    abroad = new_client()
    cap = await add(abroad, "cap")
    body = {"billing": billing("DE"), "shipping": {"method": "standard", "address": address("CA")}}
    details = (await checkout(abroad, **body)).json()["order"]["details"]
    assert details["lines"][0]["tax"] == inclusive_tax(cap["unit_amount"], 19)
    assert details["shipping"]["tax"] == exclusive_tax(490, 5)
    assert details["total"] == cap["unit_amount"] + 490 + exclusive_tax(490, 5)

    # 3 caps cost 54.00 €: standard shipping is free, and so is its tax.
    generous = new_client()
    await add(generous, "cap", 3)
    details = (
        await checkout(generous, billing=billing("DE"), shipping={"method": "standard"})
    ).json()["order"]["details"]
    assert details["subtotal"] == 3 * cap["unit_amount"] >= 5000
    shipping = details["shipping"]
    assert (shipping["amount"], shipping["tax"], shipping["free"]) == (0, 0, True)
    assert details["total"] == 3 * cap["unit_amount"]
