"""A shopper cancels an unpaid order from its page: it says Canceled, and it can no longer be
paid from the page or the history."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import Shop
from tests.browser.test_storefront import add_from_list, fill_billing


def test_an_unpaid_order_can_be_canceled_from_its_page(shop: Shop) -> None:
    page = shop.page
    shop.open("/shop/?locale=en")
    add_from_list(shop, "notebook", "Add to cart", 1)
    shop.open("/shop/#/checkout")
    fill_billing(page)
    page.get_by_role("button", name="Review order").click()
    expect(page.get_by_role("heading", name="Review and pay")).to_be_visible()

    page.get_by_role("link", name="Orders").click()
    row = page.locator("#orders li.order").first
    expect(row.locator(".status")).to_have_text("Not paid")
    row.locator("a.number").click()
    page.get_by_role("button", name="Cancel order").click()

    expect(page.locator("p.msg.ok")).to_contain_text("is canceled")
    expect(page.locator("h1 .status")).to_have_text("Canceled")
    expect(page.get_by_role("button", name="Pay again")).to_have_count(0)
    page.reload()
    expect(page.locator("h1 .status")).to_have_text("Canceled")
    expect(page.get_by_role("button", name="Cancel order")).to_have_count(0)
    page.locator("#nav-orders").click()
    row = page.locator("#orders li.order").first
    expect(row.locator(".status")).to_have_text("Canceled")
    expect(row.locator("button.pay")).to_have_count(0)
