"""A refund reported by payments shows in the storefront: on the order page and in the history."""

from __future__ import annotations

import asyncio
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from playwright.sync_api import expect

from libs.contracts.events import RefundSucceeded
from tests.browser.conftest import Shop
from tests.browser.test_storefront import add_from_list, fill_billing, press_on_payment_page
from tests.e2e.test_refunds import as_payments
from tests.support.cluster import RunningStore


def report_refund(store: RunningStore, order_id: str, amount: int) -> None:
    """Record a succeeded refund as payments would (off this thread: Playwright holds its loop)."""
    at = datetime.now(UTC)
    event = RefundSucceeded(
        refund_id=str(uuid.uuid4()),
        attempt_id=str(uuid.uuid4()),
        order_id=order_id,
        amount=amount,
        currency="EUR",
        provider="dev",
        reason="operator",
        created_at=at,
        succeeded_at=at,
    )
    with ThreadPoolExecutor(1) as pool:
        pool.submit(
            asyncio.run, as_payments(store, event, ordering_key=f"order:{order_id}")
        ).result()


def test_a_refunded_order_says_how_much_went_back(shop: Shop, store: RunningStore) -> None:
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
    expect(row.locator(".refunded")).to_have_count(0)
    order_id = row.get_attribute("data-order")
    assert order_id

    report_refund(store, order_id, 250)
    # The history shows it once orders has it (reload until then, a bounded while).
    for _ in range(50):
        shop.open("/shop/#/orders")
        page.reload()
        if page.locator("#orders li.order .refunded").count():
            break
        page.wait_for_timeout(200)
    expect(page.locator("#orders li.order .refunded")).to_have_text("Refunded €2.50")
    shop.shot("refunded-history")

    page.locator("#orders li.order a.number").first.click()
    expect(page.locator("#order-refunded")).to_have_text("€2.50")
    expect(page.locator("tr.refunded")).to_contain_text("Refunded")
    shop.shot("refunded-order")
