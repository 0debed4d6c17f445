"""A shipment an operator records through the admin API shows on the shopper's order page,
with its status and the carrier's tracking link."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import expect

from gateway.settings import DEV_JWT_SECRET
from tests.browser.conftest import Shop
from tests.browser.test_storefront import add_from_list, fill_billing, press_on_payment_page
from tests.support.admin import admin_headers
from tests.support.cluster import RunningStore

TRACKING = "https://track.example/parcels/0034"


def test_the_order_page_shows_the_shipment_and_its_tracking_link(
    shop: Shop, store: RunningStore
) -> None:
    page = shop.page
    shop.open("/shop/?locale=en")
    add_from_list(shop, "notebook", "Add to cart", 1)
    shop.open("/shop/#/checkout")
    fill_billing(page)
    page.get_by_role("button", name="Review order").click()
    page.get_by_role("button", name=re.compile("^Pay ")).click()
    press_on_payment_page(page, "Pay")
    expect(page.locator("#payment-status")).to_contain_text("Paid")
    page.get_by_role("link", name="Orders").click()
    row = page.locator("#orders li.order").first
    order_id = row.get_attribute("data-order")
    assert order_id
    row.locator("a.number").click()
    expect(page.locator("section.shipments")).to_contain_text("Not shipped yet")

    admin = admin_headers(store.env.get("GATEWAY_JWT_SECRET", DEV_JWT_SECRET))
    shipped = httpx.post(
        f"{store.base_url}/api/admin/orders/{order_id}/fulfillments",
        headers=admin,
        json={"carrier": "DHL", "tracking_number": "0034", "tracking_url": TRACKING},
        timeout=15,
    )
    assert shipped.status_code == 201, shipped.text

    page.reload()
    shipments = page.locator("section.shipments")
    expect(shipments).to_contain_text("Shipped")
    expect(shipments.locator("li.shipment")).to_contain_text("DHL, tracking number 0034")
    link = shipments.get_by_role("link", name="Track the parcel")
    expect(link).to_have_attribute("href", TRACKING)
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    shop.shot("shipped-order")
