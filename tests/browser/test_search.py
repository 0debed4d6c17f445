"""A shopper searches the storefront's product list: results as they type, a typo, German, the
"ships" filter and the price sort."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import Shop
from tests.browser.test_storefront import UNLABELLED_FIELDS, card


def test_typing_mgu_shows_the_mug(shop: Shop) -> None:
    page = shop.page
    shop.open("/shop/")
    cards = page.locator("#results li.card")
    expect(card(page, "cap")).to_be_visible()
    searches: list[str] = []
    page.on("request", lambda r: searches.append(r.url) if "q=" in r.url else None)
    page.get_by_label("Search products").press_sequentially("mgu", delay=40)
    expect(cards.first).to_have_attribute("data-product", "mug")
    expect(card(page, "cap")).to_have_count(0)
    # Debounced: one request for the three keystrokes, not one per key.
    assert len(searches) == 1, searches
    shop.shot("search-typo")
    assert page.evaluate(UNLABELLED_FIELDS) == []

    page.get_by_label("Search products").fill("")
    page.get_by_label("Sort").select_option("price_asc")
    expect(cards.nth(1)).to_be_visible()
    amounts = page.locator("#results li.card .price .amount").all_inner_texts()
    assert amounts, "the price sort shows products"
    page.get_by_label("Ships").check()
    expect(card(page, "guide-ebook")).to_have_count(0)
    expect(card(page, "mug")).to_be_visible()


def test_tasse_in_german_shows_the_mug(shop: Shop) -> None:
    page = shop.page
    shop.open("/shop/?locale=de")
    expect(page.get_by_role("heading", level=1)).to_have_text("Produkte")
    page.get_by_label("Produkte suchen").fill("tasse")
    expect(page.locator("#results li.card").first).to_have_attribute("data-product", "mug")
    expect(page.locator("#results li.card").first.get_by_role("heading")).to_have_text(
        re.compile("Steinzeugtasse")
    )
    expect(page.get_by_label("Sortieren")).to_be_visible()
