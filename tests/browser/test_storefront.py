"""A shopper clicks through the storefront: browse in German, fill and change the cart, check
out anonymously, pay on the dev provider's page, see the order paid; a decline and paying
again; a field error from the API next to its field; logging in merges the cart; shipping
by express to another address."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Page, expect

from tests.browser.conftest import Shop

# Inputs, selects and textareas that no <label> names (aria-label counts as a name too).
UNLABELLED_FIELDS = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter((el) => el.type !== 'hidden' && !el.labels?.length && !el.getAttribute('aria-label'))
  .map((el) => el.name || el.id || el.outerHTML)"""


def card(page: Page, key: str):  # type: ignore[no-untyped-def]
    return page.locator(f'li.card[data-product="{key}"]')


def add_from_list(shop: Shop, key: str, button: str, count: int) -> None:
    card(shop.page, key).get_by_role("button", name=re.compile(button)).first.click()
    expect(shop.page.locator("#cart-count")).to_have_text(str(count))


def fill_billing(page: Page, *, email: str = "ada@example.com") -> None:
    form = page.locator("form#checkout")
    form.get_by_label(re.compile("^(Full name|Vollständiger Name)$")).fill("Ada Lovelace")
    form.locator('[name="billing.email"]').fill(email)
    form.locator('[name="billing.address.line1"]').fill("Hauptstraße 1")
    form.locator('[name="billing.address.postal_code"]').fill("10115")
    form.locator('[name="billing.address.city"]').fill("Berlin")
    form.locator('[name="billing.address.country"]').select_option("DE")


def press_on_payment_page(page: Page, button: str) -> None:
    expect(page).to_have_url(re.compile(r"/api/payments/dev-checkout/"))
    page.get_by_role("button", name=button, exact=True).click()


def test_browse_in_german_fill_the_cart_check_out_and_pay(shop: Shop) -> None:
    page = shop.page
    shop.open("/shop/?locale=de")
    expect(page.get_by_role("heading", level=1)).to_have_text("Produkte")
    expect(card(page, "cap").get_by_role("heading")).to_have_text("Baseballkappe")
    expect(card(page, "cap").locator(".amount")).to_have_text("18,00\u00a0€")
    expect(card(page, "coffee").locator(".amount").nth(1)).to_have_text("7,90\u00a0€ pro Monat")
    shop.shot("products", docs=True)

    add_from_list(shop, "cap", "In den Warenkorb", 1)
    add_from_list(shop, "mug", "In den Warenkorb", 2)

    page.get_by_role("link", name=re.compile("^Warenkorb")).click()
    lines = page.locator("#cart-lines li.line")
    expect(lines).to_have_count(2)
    cap = page.locator("li.line", has_text="Baseballkappe")
    cap.get_by_label("Menge").fill("3")
    cap.get_by_role("button", name="Ändern").click()
    expect(page.locator("#cart-count")).to_have_text("4")
    expect(cap.locator(".sub")).to_have_text("54,00\u00a0€")
    expect(page.locator("#cart-total")).to_have_text("66,90\u00a0€")  # 3 x 18,00 + 12,90
    shop.shot("cart", docs=True)
    shop.shot_phone("cart-phone", docs=True)

    page.get_by_role("link", name="Zur Kasse").click()
    fill_billing(page)
    shop.shot("checkout")
    page.get_by_role("button", name="Bestellung prüfen").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Prüfen und bezahlen")
    expect(page.locator("tr.tax")).to_contain_text("MwSt. 19 % (enthalten)")
    expect(page.locator("#order-total")).to_have_text("66,90\u00a0€")
    # Over 50 €, standard shipping (offered first, so chosen) is free.
    expect(page.locator("tr.shipping")).to_contain_text("Standardversand · kostenlos")
    expect(page.locator("#shipped-to")).to_contain_text("Lieferung an: Ada Lovelace, Hauptstraße 1")
    shop.shot("review", docs=True)

    page.get_by_role("button", name="66,90\u00a0€ bezahlen").click()
    shop.shot("payment-page", docs=True)
    press_on_payment_page(page, "Pay")
    expect(page.locator("#payment-status")).to_contain_text("Bezahlt")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Vielen Dank! Ihre Bestellung ist bezahlt."
    )
    expect(page.locator("#cart-count")).to_have_text("0")
    shop.shot("paid", docs=True)

    page.get_by_role("link", name="Bestellungen").click()
    orders = page.locator("#orders li.order")
    expect(orders).to_have_count(1)
    expect(orders.first.locator(".status")).to_have_text("Bezahlt")
    shop.shot("orders")

    keys = shop.action_keys()
    assert {path: len(sent) for path, sent in keys.items()} == {
        "/api/store/cart/lines": 2,
        "/api/store/checkout": 1,
    }
    sent = [key for path_keys in keys.values() for key in path_keys]
    assert all(sent) and len(set(sent)) == len(sent), "a fresh key for every action"


def test_a_field_error_then_a_decline_then_paying_again(shop: Shop) -> None:
    page = shop.page
    shop.open("/shop/?locale=en")
    add_from_list(shop, "notebook", "Add to cart", 1)
    shop.open("/shop/#/checkout")
    fill_billing(page, email="ada-at-example")
    page.get_by_role("button", name="Review order").click()
    email = page.locator('[name="billing.email"]')
    expect(email).to_have_attribute("aria-invalid", "true")
    error = page.locator("#f-billing-email-error")
    expect(error).to_contain_text("not a valid email address")
    assert email.get_attribute("aria-describedby") == "f-billing-email-error"
    expect(page.locator('[name="billing.name"]')).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#form-errors")).to_contain_text("Please correct the marked fields.")
    assert page.evaluate(UNLABELLED_FIELDS) == [], "every field has a label"
    shop.shot("field-error", docs=True)

    email.fill("ada@example.com")
    page.get_by_role("button", name="Review order").click()
    page.get_by_role("button", name=re.compile("^Pay ")).click()
    press_on_payment_page(page, "Decline")
    expect(page.get_by_role("heading", level=1)).to_have_text("The payment did not go through.")
    expect(page.locator("main .status")).to_have_text("Not paid")
    shop.shot("declined", docs=True)

    page.get_by_role("button", name="Pay again").click()
    press_on_payment_page(page, "Pay")
    expect(page.locator("#payment-status")).to_contain_text("Paid")

    page.get_by_role("link", name="Orders").click()
    expect(page.locator("#orders li.order")).to_have_count(1)
    expect(page.locator("#orders .status")).to_have_text("Paid")
    keys = shop.action_keys()
    assert len(keys["/api/store/checkout"]) == 2  # the refused checkout, then the good one
    assert len(keys["/api/store/orders/ID/pay"]) == 1 and all(keys["/api/store/orders/ID/pay"])


def test_a_bank_debit_on_its_way_shows_processing_instead_of_pay_again(shop: Shop) -> None:
    page = shop.page
    shop.open("/shop/?locale=en")
    add_from_list(shop, "notebook", "Add to cart", 1)
    shop.open("/shop/#/checkout")
    fill_billing(page)
    page.get_by_role("button", name="Review order").click()
    page.get_by_role("button", name=re.compile("^Pay ")).click()
    press_on_payment_page(page, "Pay by bank debit (settles later)")
    processing = "Payment processing — we will e-mail you"
    expect(page.get_by_role("heading", level=1)).to_have_text(processing)
    expect(page.locator("#payment-status .status")).to_have_text("Processing")
    shop.shot("processing")

    page.get_by_role("link", name="Orders").click()
    row = page.locator("#orders li.order")
    expect(row).to_have_count(1)
    # The list does not know yet; pressing Pay again says why nothing is to be paid.
    row.get_by_role("button", name="Pay again").click()
    expect(row.locator(".msg.processing")).to_have_text(processing)
    row.locator("a.number").click()
    expect(page.locator("main h1 .status")).to_have_text("Processing")
    expect(page.locator("main .msg.processing")).to_have_text(processing)
    expect(page.get_by_role("button", name="Pay again")).to_have_count(0)


def test_logging_in_merges_this_visits_cart_into_the_users(shop: Shop) -> None:
    page = shop.page
    user = f"shopper-{uuid.uuid4().hex[:8]}"
    shop.open("/shop/?locale=en")
    page.get_by_label("Log in as").fill(user)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#signed-in")).to_contain_text(f"Signed in as {user}")
    add_from_list(shop, "tote", "Add to cart", 1)
    page.get_by_role("button", name="Log out").click()
    expect(page.locator("#cart-count")).to_have_text("0")

    add_from_list(shop, "poster", "Add to cart", 1)
    add_from_list(shop, "tote", "Add to cart", 2)
    page.get_by_label("Log in as").fill(user)
    page.keyboard.press("Enter")  # the whole box works from the keyboard
    expect(page.locator("#flash")).to_contain_text("moved into your account (3 items")
    expect(page.locator("#cart-count")).to_have_text("3")
    shop.shot("merged", docs=True)

    page.get_by_role("link", name=re.compile("^Cart")).click()
    expect(
        page.locator("li.line", has_text="Canvas tote bag").get_by_label("Quantity")
    ).to_have_value("2")
    expect(page.locator("li.line", has_text="Mountain poster")).to_have_count(1)
    shop.shot("merged-cart")

    # The user's billing details are kept: the next checkout offers them, already chosen.
    page.get_by_role("link", name="Check out").click()
    fill_billing(page)
    page.get_by_role("button", name="Review order").click()
    expect(page.locator("#order-total")).to_have_text("€53.90")  # 19.00 + 2 x 15.00 + 4.90
    page.get_by_role("link", name="Products").click()
    add_from_list(shop, "stickers", "Add to cart", 1)
    page.get_by_role("link", name=re.compile("^Cart")).click()
    page.get_by_role("link", name="Check out").click()
    saved = page.get_by_label(re.compile("^Ada Lovelace · ada@example.com"))
    expect(saved).to_be_checked()
    expect(page.locator("fieldset#billing")).to_be_hidden()
    shop.shot("saved-customer")
    page.get_by_role("button", name="Review order").click()
    expect(page.locator("main")).to_contain_text("Billed to: Ada Lovelace, Berlin, DE")
    expect(page.locator("#order-total")).to_have_text("€9.40")  # 4.50 + 4.90 shipping


def test_choosing_express_shipping_to_another_address(shop: Shop) -> None:
    page = shop.page
    shop.open("/shop/?locale=en")
    add_from_list(shop, "cap", "Add to cart", 1)
    shop.open("/shop/#/checkout")
    fill_billing(page)
    methods = page.locator("#shipping-methods")
    expect(
        methods.get_by_label(re.compile("^Standard shipping · €4.90 · 2.5 days"))
    ).to_be_checked()
    express = methods.get_by_label(re.compile("^Express · €12.90 · 1.2 days"))

    # Another address, in a country express does not reach: only standard is offered there.
    page.get_by_label("Ship to the billing address").uncheck()
    address = page.locator("#shipping-address")
    address.get_by_label("Country").select_option("US")
    expect(express).to_have_count(0)
    address.get_by_label("Country").select_option("AT")
    express.check()
    address.get_by_label("Recipient").fill("Charles Babbage")
    address.get_by_label("Phone (optional)").fill("+43 1 234567")
    address.get_by_label("Address", exact=True).fill("Ringstraße 5")
    address.get_by_label("Postal code").fill("1010")
    address.get_by_label("City").fill("Wien")
    assert page.evaluate(UNLABELLED_FIELDS) == [], "every field has a label"
    shop.shot("shipping")

    page.get_by_role("button", name="Review order").click()
    expect(page.locator("tr.shipping")).to_contain_text("Express")
    expect(page.locator("#order-shipping")).to_have_text("€12.90")
    expect(page.locator("#order-total")).to_have_text("€30.90")  # 18.00 + 12.90
    expect(page.locator("#shipped-to")).to_have_text(
        "Ships to: Charles Babbage, Ringstraße 5, 1010 Wien, AT"
    )
    page.get_by_role("button", name="Pay €30.90").click()
    press_on_payment_page(page, "Pay")
    expect(page.locator("#payment-status")).to_contain_text("Paid")
