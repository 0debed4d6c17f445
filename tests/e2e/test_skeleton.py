"""The walking skeleton through the gateway: browse, add to cart, identity, errors."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import token_for
from tests.e2e.helpers import assert_problem, one_off_price, products
from tests.support.cluster import RunningStore


async def test_products_are_listed_with_prices_and_images(client: httpx.AsyncClient) -> None:
    items = await products(client)
    assert len(items) >= 6
    keys = [p["key"] for p in items]
    assert len(keys) == len(set(keys))
    for product in items:
        assert product["name"] and product["prices"]
        for price in product["prices"]:
            assert isinstance(price["unit_amount"], int) and len(price["currency"]) == 3
    with_images = [p for p in items if p["images"]]
    assert with_images, "the example catalog ships images"
    image = with_images[0]["images"][0]
    assert image["url"].startswith("/media/") and image["thumbnails"]
    media = await client.get(image["url"])
    assert media.status_code == 200 and media.headers["content-type"].startswith("image/")


async def test_product_by_key_and_unknown_key(client: httpx.AsyncClient) -> None:
    first = (await products(client))[0]
    response = await client.get(f"/api/store/products/{first['key']}")
    assert response.status_code == 200 and response.json()["key"] == first["key"]
    assert_problem(await client.get("/api/store/products/no-such-product"), 404)


async def test_texts_follow_the_locale(client: httpx.AsyncClient) -> None:
    key = (await products(client))[0]["key"]
    names = set()
    for locale in ("en", "de", "fr"):
        response = await client.get(f"/api/store/products/{key}", params={"locale": locale})
        assert response.status_code == 200
        names.add(response.json()["name"])
    assert len(names) >= 2, "the example catalog is translated"
    by_header = await client.get(
        f"/api/store/products/{key}", headers={"accept-language": "de-DE,de;q=0.9"}
    )
    german = await client.get(f"/api/store/products/{key}", params={"locale": "de"})
    assert by_header.json()["name"] == german.json()["name"]


async def test_add_to_cart_sets_a_signed_cookie_and_adds_up(client: httpx.AsyncClient) -> None:
    price = await one_off_price(client)
    first = await client.post(
        "/api/store/cart/lines", json={"pricing_id": price["id"], "quantity": 1}
    )
    assert first.status_code == 200, first.text
    cookie = first.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    second = await client.post(
        "/api/store/cart/lines", json={"pricing_id": price["id"], "quantity": 2}
    )
    cart = second.json()
    assert [line["quantity"] for line in cart["lines"]] == [3]
    line = cart["lines"][0]
    assert line["subtotal"] == 3 * price["unit_amount"] == cart["subtotal"]
    assert cart["item_count"] == 3 and cart["currency"] == price["currency"]
    summary = (await client.get("/api/store/cart")).json()
    assert summary["lines"] == cart["lines"]


async def test_shoppers_never_see_each_others_carts(new_client) -> None:  # type: ignore[no-untyped-def]
    alice, bob, forger = new_client(), new_client(), new_client()
    price = await one_off_price(alice)
    await alice.post("/api/store/cart/lines", json={"pricing_id": price["id"], "quantity": 1})
    assert (await bob.get("/api/store/cart")).json()["lines"] == []
    # A tampered cookie is ignored: the forger has no identity and sees an empty cart.
    cookie_name, value = next(iter(alice.cookies.items()))
    forger.cookies.set(cookie_name, value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert (await forger.get("/api/store/cart")).json()["lines"] == []


async def test_login_merges_the_anonymous_cart_and_clears_the_cookie(
    client: httpx.AsyncClient, store: RunningStore
) -> None:
    import uuid

    price = await one_off_price(client)
    await client.post("/api/store/cart/lines", json={"pricing_id": price["id"], "quantity": 2})
    token = token_for(store, f"user-{uuid.uuid4().hex[:8]}")
    response = await client.get("/api/store/cart", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert [line["quantity"] for line in response.json()["lines"]] == [2]
    assert "max-age=0" in response.headers.get("set-cookie", "").lower()
    client.cookies.clear()
    again = await client.post(
        "/api/store/session/merge", headers={"authorization": f"Bearer {token}"}
    )
    assert again.status_code == 200 and again.json()["merged"] is False
    assert [line["quantity"] for line in again.json()["cart"]["lines"]] == [2]


async def test_bad_requests_are_problems_not_crashes(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/store/orders/123"), 401)  # no identity yet
    assert_problem(await client.post("/api/store/cart/lines", json={"quantity": 1}), 422)
    assert_problem(
        await client.post(
            "/api/store/cart/lines",
            content=b"{not json",
            headers={"content-type": "application/json"},
        ),
        422,
    )
    assert_problem(
        await client.post("/api/store/cart/lines", json={"pricing_id": "nope", "quantity": 1}), 422
    )
    assert_problem(
        await client.post("/api/store/cart/lines", json={"pricing_id": "x", "quantity": 0}), 422
    )
    assert_problem(await client.get("/api/store/products", params={"limit": 0}), 422)
    assert_problem(await client.get("/api/store/products", params={"cursor": "garbage!!"}), 422)
    assert_problem(await client.get("/api/store/nowhere"), 404)
    assert_problem(
        await client.get("/api/store/cart", headers={"authorization": "Bearer not-a-jwt"}),
        401,
        "invalid_token",
    )
    assert_problem(await client.get("/api/store/orders/123"), 404)  # an identity, not its order


async def test_operations_endpoints(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and all(ready.json()["checks"].values())
    metrics = await client.get("/metrics")
    assert "store_http_requests_total" in metrics.text
    asyncapi = (await client.get("/asyncapi")).json()
    assert "orders.order.paid.v1" in {c["address"] for c in asyncapi["channels"].values()}
    assert (await client.get("/docs")).status_code == 200
    assert "/api/store/cart/lines" in (await client.get("/openapi.json")).json()["paths"]
    correlated = await client.get("/api/store/products", headers={"x-correlation-id": "abc123"})
    assert correlated.headers["x-correlation-id"] == "abc123"


async def test_an_odd_accept_language_never_fails_a_request(client: httpx.AsyncClient) -> None:
    price = await one_off_price(client)
    for header in ("zz", "x-klingon", "de-DE,de;q=0.9", "*"):
        response = await client.post(
            "/api/store/cart/lines",
            json={"pricing_id": price["id"], "quantity": 1},
            headers={"accept-language": header},
        )
        assert response.status_code == 200, (header, response.text)
    assert_problem(await client.get("/api/store/cart", params={"locale": "zz"}), 422)
