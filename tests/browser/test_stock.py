"""Stock in the storefront: a product page says how few are left, says "Sold out" and disables
its button once the last unit sold, and a checkout refused for stock shows the API's words."""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.browser.conftest import Shop
from tests.browser.test_storefront import card, fill_billing, press_on_payment_page
from tests.support.cluster import RunningStore


def set_stock(store: RunningStore, key: str, on_hand: int) -> dict[str, Any]:
    """What an operator does: PUT /api/admin/products/{key}/stock with an admin token."""
    from gateway.identity import issue_token
    from gateway.settings import DEV_JWT_SECRET

    secret = store.env.get("GATEWAY_JWT_SECRET", DEV_JWT_SECRET)
    token = issue_token("ops@example", secret=secret, roles=["store:admin"])
    answer = httpx.put(
        f"{store.base_url}/api/admin/products/{key}/stock",
        json={"on_hand": on_hand},
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def reload_until(shop: Shop, path: str, locator: str, text: str) -> None:
    """Reload until the page shows `text` (product pages are cached a few seconds)."""
    page = shop.page
    for _ in range(60):
        shop.open(path)
        page.reload()
        found = page.locator(locator)
        if found.count() and text in (found.first.text_content() or ""):
            return
        page.wait_for_timeout(250)
    expect(page.locator(locator).first).to_contain_text(text)


def test_the_last_units_sell_then_the_product_is_sold_out(shop: Shop, store: RunningStore) -> None:
    page = shop.page
    set_stock(store, "poster", 2)
    reload_until(shop, "/shop/?locale=en#/product/poster", ".stock", "Only 2 left")
    shop.shot("stock-only-2-left")

    page.get_by_label("Quantity").first.fill("2")
    page.get_by_role("button", name=re.compile("^Add to cart")).first.click()
    expect(page.locator("#cart-count")).to_have_text("2")
    shop.open("/shop/#/checkout")
    fill_billing(page)
    page.get_by_role("button", name="Review order").click()
    page.get_by_role("button", name=re.compile("^Pay ")).click()
    press_on_payment_page(page, "Pay")
    expect(page.locator("#payment-status")).to_contain_text("Paid")

    reload_until(shop, "/shop/?locale=en#/product/poster", ".stock", "Sold out")
    button = page.locator("form.price button").first
    expect(button).to_be_disabled()
    expect(button).to_have_text("Sold out")
    shop.open("/shop/?locale=en")
    expect(card(page, "poster").locator(".stock")).to_have_text("Sold out")
    shop.shot("stock-sold-out")


def test_a_checkout_refused_for_stock_says_so_in_the_apis_words(
    shop: Shop, store: RunningStore
) -> None:
    page = shop.page
    set_stock(store, "tote", 1)
    reload_until(shop, "/shop/?locale=en#/product/tote", ".stock", "Only 1 left")
    page.get_by_role("button", name=re.compile("^Add to cart")).first.click()
    expect(page.locator("#cart-count")).to_have_text("1")
    set_stock(store, "tote", 0)  # the last one went elsewhere meanwhile
    shop.open("/shop/#/checkout")
    fill_billing(page)
    page.get_by_role("button", name="Review order").click()
    expect(page.locator("#form-errors")).to_contain_text("Not enough in stock: tote")
    shop.shot("stock-checkout-refused")
