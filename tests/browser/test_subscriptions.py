"""A shopper with a subscription sees it on the orders page and manages it in the billing
portal (the dev provider's page): cancels it, and is told when it ends."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import Shop
from tests.browser.test_storefront import add_from_list, fill_billing, press_on_payment_page


def test_a_subscription_is_listed_and_canceled_in_the_billing_portal(shop: Shop) -> None:
    page = shop.page
    shop.open("/shop/?locale=en")
    add_from_list(shop, "coffee", "Subscribe", 1)
    shop.open("/shop/#/checkout")
    fill_billing(page)
    page.get_by_role("button", name="Review order").click()
    page.get_by_role("button", name=re.compile("^Pay ")).click()
    press_on_payment_page(page, "Pay")
    expect(page.locator("#payment-status")).to_contain_text("Paid")

    # Listed once payments has activated it (reload until then, a bounded while).
    for _ in range(50):
        shop.open("/shop/#/orders")
        page.reload()
        if page.locator("#subscriptions li.subscription").count():
            break
        page.wait_for_timeout(200)
    row = page.locator("#subscriptions li.subscription")
    expect(row).to_have_count(1)
    expect(row.locator(".status")).to_have_text("Active")
    expect(row).to_contain_text("Renews on")
    shop.shot("subscriptions")

    row.get_by_role("button", name="Manage billing").click()
    expect(page).to_have_url(re.compile(r"/api/payments/dev-checkout/subscriptions/.+/portal"))
    expect(page.locator("#status")).to_have_text("active")
    page.get_by_role("button", name="Cancel subscription").click()
    expect(page.locator("#done")).to_contain_text("ends with the current period")
    expect(page.get_by_role("button", name="Cancel subscription")).to_have_count(0)

    page.get_by_role("link", name="Back to the shop").click()
    shop.open("/shop/#/orders")
    page.reload()
    expect(page.locator("#subscriptions li.subscription")).to_contain_text("Ends on")
