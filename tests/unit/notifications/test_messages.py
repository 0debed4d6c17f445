"""What each message says, in each language, with amounts exact from minor units."""

from __future__ import annotations

from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from libs.contracts.orders import OrderOut
from services.notifications import domain
from services.notifications.domain import Notice, pick_locale
from services.notifications.messages import Letterhead, MessageRenderer
from tests.unit.notifications.builders import (
    NOW,
    fulfilled,
    new_id,
    order_out,
    paid,
    past_due,
    payment_failed,
    refunded,
    renewed,
)

TIMES = "\N{MULTIPLICATION SIGN}"
RENDERER = MessageRenderer(Letterhead(sender="Shop <shop@shop.example>", shop_name="Shop"))

NOTICES: dict[str, Callable[[OrderOut], Notice]] = {
    "order_paid": lambda o: domain.order_paid_notice(new_id(), paid(o), o),
    "order_shipped": lambda o: domain.order_shipped_notice(new_id(), fulfilled(o), o),
    "refund_issued": lambda o: domain.refund_issued_notice(new_id(), refunded(o, 1000), o),
    "payment_failed": lambda o: domain.payment_failed_notice(
        new_id(), payment_failed(o), o, shop_url=None
    ),
    "renewal_paid": lambda o: domain.renewal_paid_notice(new_id(), renewed(o, 900), o),
    "renewal_failed": lambda o: domain.renewal_failed_notice(new_id(), past_due(o, 900), o),
}

SUBJECTS = {
    ("order_paid", "en"): "Your order {number} is confirmed",
    ("order_paid", "de"): "Ihre Bestellung {number} ist bestätigt",
    ("order_paid", "fr"): "Votre commande {number} est confirmée",
    ("order_shipped", "en"): "Your order {number} has shipped",
    ("order_shipped", "de"): "Ihre Bestellung {number} wurde versandt",
    ("order_shipped", "fr"): "Votre commande {number} a été expédiée",
    ("refund_issued", "en"): "Refund for your order {number}",
    ("refund_issued", "de"): "Erstattung zu Ihrer Bestellung {number}",
    ("refund_issued", "fr"): "Remboursement de votre commande {number}",
    ("payment_failed", "en"): "The payment for your order {number} did not go through",
    ("payment_failed", "de"): "Die Zahlung für Ihre Bestellung {number} ist fehlgeschlagen",
    ("payment_failed", "fr"): "Le paiement de votre commande {number} n'a pas abouti",
    ("renewal_paid", "en"): "Your subscription was renewed",
    ("renewal_paid", "de"): "Ihr Abonnement wurde verlängert",
    ("renewal_paid", "fr"): "Votre abonnement a été renouvelé",
    ("renewal_failed", "en"): "We could not renew your subscription",
    ("renewal_failed", "de"): "Wir konnten Ihr Abonnement nicht verlängern",
    ("renewal_failed", "fr"): "Nous n'avons pas pu renouveler votre abonnement",
}


def parts(message: EmailMessage) -> tuple[str, str]:
    """The plain text and the HTML of a message, as a mail client reads them."""
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed.get_content_type() == "multipart/alternative"
    text = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


@pytest.mark.parametrize(("kind", "locale"), sorted(SUBJECTS))
def test_each_kind_is_sent_in_the_orders_language_as_text_and_html(kind: str, locale: str) -> None:
    order = order_out(locale=locale)
    notice = NOTICES[kind](order)
    message = RENDERER.compose(notice, now=NOW)

    assert notice.kind == kind and notice.locale == locale
    assert message["Subject"] == SUBJECTS[kind, locale].format(number=order.number)
    assert message["To"] == "ada@example.com"
    assert message["Content-Language"] == locale
    assert message["Message-ID"] == f"<{notice.event_id}.{kind}@shop.example>"
    text, html = parts(message)
    greeting = {
        "en": "Hello Ada Lovelace,",
        "de": "Hallo Ada Lovelace,",
        "fr": "Bonjour Ada Lovelace,",
    }
    assert text.startswith(greeting[locale]) and greeting[locale] in html
    assert order.number in text and order.number in html
    assert "{" not in text and "{" not in html  # every placeholder filled


def test_the_confirmation_lists_lines_shipping_tax_and_total() -> None:
    order = order_out(lines=[("Mug", 1999, 2), ("Tea & Co <b>", 450, 1)], shipping=490)
    text, html = parts(RENDERER.compose(NOTICES["order_paid"](order), now=NOW))

    assert f"2 {TIMES} Mug (€19.99)    €39.98" in text
    assert f"1 {TIMES} Tea & Co <b> (€4.50)    €4.50" in text
    assert "Subtotal: €44.48" in text
    assert "Shipping (Standard): €4.90" in text
    assert "VAT 19 %: €8.44" in text  # 759 + 85
    assert "Total: €57.82" in text
    assert "Shipping to:\nAda Lovelace\nUnter den Linden 1\n10117 Berlin\nDE" in text
    # HTML is escaped: a product name is text, never markup.
    assert "Tea &amp; Co &lt;b&gt;" in html and "<b>" not in html
    assert "€57.82" in html


def test_inclusive_tax_is_shown_as_included() -> None:
    order = order_out(locale="de", tax_rate=("MwSt. 19 %", 19, True), shipping=None)
    text, _ = parts(RENDERER.compose(NOTICES["order_paid"](order), now=NOW))
    assert "inkl. MwSt. 19 %: 7,59\xa0€" in text
    assert "Versand" not in text and "Lieferadresse" not in text


@pytest.mark.parametrize(
    ("currency", "locale", "unit", "expected"),
    [
        ("JPY", "en", 1200, "¥1,200"),
        ("JPY", "de", 1200, "1.200\xa0¥"),
        ("BHD", "en", 1234, "BHD1.234"),
        ("BHD", "fr", 1230, "1,230\xa0BHD"),
        ("EUR", "fr", 123456, "1\u202f234,56\xa0€"),
        ("EUR", "en", 5, "€0.05"),
    ],
)
def test_amounts_keep_every_digit_of_the_currencys_exponent(
    currency: str, locale: str, unit: int, expected: str
) -> None:
    order = order_out(
        locale=locale, currency=currency, lines=[("Mug", unit, 1)], shipping=None, tax_rate=None
    )
    text, html = parts(RENDERER.compose(NOTICES["order_paid"](order), now=NOW))
    assert f"1 {TIMES} Mug ({expected})    {expected}" in text
    assert expected in html
    refund = RENDERER.render(domain.refund_issued_notice(new_id(), refunded(order, unit), order))
    assert expected in refund.text


def test_shipped_carries_the_carrier_tracking_number_and_link() -> None:
    order = order_out(locale="fr")
    notice = domain.order_shipped_notice(new_id(), fulfilled(order, partial=True), order)
    text, html = parts(RENDERER.compose(notice, now=NOW))
    assert "Votre commande est en route avec DHL." in text
    assert "Numéro de suivi : 00340434161234567890" in text
    assert "Suivre votre colis : https://track.example/?id=00340434161234567890&x=<y>" in text
    assert "le reste suivra séparément" in text
    assert 'href="https://track.example/?id=00340434161234567890&amp;x=&lt;y&gt;"' in html
    assert f"2 {TIMES} Mug" in text


def test_renewal_failed_links_where_the_card_is_fixed() -> None:
    order = order_out(locale="de")
    rendered = RENDERER.render(domain.renewal_failed_notice(new_id(), past_due(order, 900), order))
    assert "Die Abbuchung von 9,00\xa0€" in rendered.text
    assert "https://invoice.example/i/1" in rendered.text
    assert 'href="https://invoice.example/i/1"' in rendered.html
    assert "Wir versuchen es am 4. Mai 2026 erneut." in rendered.text


def test_renewal_paid_says_until_when() -> None:
    order = order_out(locale="fr")
    rendered = RENDERER.render(domain.renewal_paid_notice(new_id(), renewed(order, 900), order))
    assert "Nous avons débité 9,00\xa0€" in rendered.text
    assert "jusqu'au 1 mai 2026" in rendered.text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("de", "de"),
        ("de-AT", "de"),
        ("fr_CA", "fr"),
        ("FR", "fr"),
        ("it", "en"),
        (None, "en"),
        ("", "en"),
    ],
)
def test_the_language_falls_back_to_english(value: str | None, expected: str) -> None:
    assert pick_locale(value) == expected


def test_an_unsupported_locale_is_written_in_english() -> None:
    order = order_out(locale="it")
    message = RENDERER.compose(NOTICES["order_paid"](order), now=NOW)
    assert message["Subject"] == f"Your order {order.number} is confirmed"
    assert message["Content-Language"] == "en"


def test_the_message_id_is_the_same_for_a_resent_copy() -> None:
    order = order_out()
    event = paid(order)
    event_id = new_id()
    first = RENDERER.compose(domain.order_paid_notice(event_id, event, order), now=NOW)
    again = RENDERER.compose(domain.order_paid_notice(event_id, event, order), now=NOW)
    assert first["Message-ID"] == again["Message-ID"]


def test_only_web_addresses_are_linked() -> None:
    order = order_out()
    event = fulfilled(order).model_copy(update={"tracking_url": "javascript:alert(1)"})
    rendered = RENDERER.render(domain.order_shipped_notice(new_id(), event, order))
    assert "javascript" not in rendered.html and "javascript" not in rendered.text
    assert "00340434161234567890" in rendered.text
