"""Catalog rules: prices in currencies of 0, 2 and 3 decimals, locales, texts, price changes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.contracts.money import to_decimal
from libs.runtime.problems import InvalidInput
from services.catalog.domain import (
    ExistingPrice,
    TaxRate,
    Terms,
    Texts,
    amount_to_minor,
    check_country,
    check_statement_descriptor,
    check_terms,
    decode_cursor,
    encode_cursor,
    how_to_change,
    locale_chain,
    normalize_locale,
    parse_accept_language,
    plan_prices,
    resolve_texts,
    select_tax_rates,
)

# Currencies by ISO 4217 minor-unit digits: the three shapes money comes in.
BY_DECIMALS = {
    0: ["JPY", "KRW", "CLP", "ISK"],
    2: ["EUR", "USD", "GBP", "CHF"],
    3: ["KWD", "BHD", "TND", "JOD"],
}
CURRENCIES = st.sampled_from([(c, d) for d, codes in BY_DECIMALS.items() for c in codes])
AMOUNTS = st.integers(min_value=0, max_value=999_999_999_999)


def field_of(error: InvalidInput) -> str:
    assert error.errors
    return error.errors[0].field


# --------------------------------------------------------------------------------- prices


@given(CURRENCIES, AMOUNTS)
def test_a_decimal_amount_becomes_exact_minor_units_in_every_currency(
    currency: tuple[str, int], minor: int
) -> None:
    code, decimals = currency
    major = to_decimal(minor, code)
    assert amount_to_minor(str(major), code, "amount") == minor
    assert amount_to_minor(major, code, "amount") == minor
    # Trailing zeros are not extra precision.
    assert amount_to_minor(f"{major}{'0' if decimals else '.0'}", code, "amount") == minor


@given(CURRENCIES, AMOUNTS, st.integers(min_value=1, max_value=9))
def test_more_decimals_than_the_currency_has_is_refused(
    currency: tuple[str, int], minor: int, extra_digit: int
) -> None:
    code, decimals = currency
    major = to_decimal(minor, code)
    text = f"{major}{extra_digit}" if decimals else f"{major}.{extra_digit}"
    with pytest.raises(InvalidInput) as caught:
        amount_to_minor(text, code, "prices.0.amount")
    assert field_of(caught.value) == "prices.0.amount"
    assert caught.value.code == "invalid_amount"


@given(CURRENCIES, AMOUNTS)
def test_terms_normalize_the_currency_and_keep_the_amount(
    currency: tuple[str, int], minor: int
) -> None:
    code, _ = currency
    terms = check_terms(
        unit_amount=minor, currency=f" {code.lower()} ", interval=None, interval_count=1
    )
    assert terms == Terms(minor, code)


@pytest.mark.parametrize("currency", ["XYZ", "EURO", "", "xau", "XTS"])
def test_unknown_or_non_tender_currency_is_a_422_naming_the_field(currency: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_terms(
            unit_amount=100, currency=currency, interval=None, interval_count=1, prefix="prices.2."
        )
    assert field_of(caught.value) == "prices.2.currency"
    assert caught.value.code == "unknown_currency"


def test_negative_amount_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_terms(unit_amount=-1, currency="EUR", interval=None, interval_count=1)
    assert field_of(caught.value) == "unit_amount"
    with pytest.raises(InvalidInput):
        amount_to_minor("-1.00", "EUR", "amount")


@pytest.mark.parametrize(
    ("interval", "count", "ok"),
    [
        ("day", 365, True),
        ("day", 366, False),
        ("week", 52, True),
        ("week", 53, False),
        ("month", 12, True),
        ("month", 13, False),
        ("year", 1, True),
        ("year", 2, False),
        ("month", 0, False),
        ("fortnight", 1, False),
        (None, 2, False),
    ],
)
def test_recurring_prices_repeat_at_least_once_a_year(
    interval: str | None, count: int, ok: bool
) -> None:
    def check() -> Terms:
        return check_terms(unit_amount=990, currency="EUR", interval=interval, interval_count=count)

    if ok:
        assert check().interval == interval
    else:
        with pytest.raises(InvalidInput) as caught:
            check()
        assert caught.value.code == "invalid_interval"
        assert field_of(caught.value) in ("interval", "interval_count")


def test_a_sold_price_is_replaced_and_an_unsold_one_edited() -> None:
    old, new = Terms(1000, "EUR"), Terms(1200, "EUR")
    assert how_to_change(current=old, wanted=old, used=True) == "unchanged"
    assert how_to_change(current=old, wanted=new, used=False) == "in_place"
    assert how_to_change(current=old, wanted=new, used=True) == "replace"


def test_price_plan_keeps_same_terms_changes_within_a_slot_and_retires_the_rest() -> None:
    one_off = ExistingPrice("a", Terms(890, "EUR"), used=True)
    monthly = ExistingPrice("b", Terms(790, "EUR", "month"), used=False)
    yearly = ExistingPrice("c", Terms(7900, "EUR", "year"), used=False)
    wanted = [Terms(890, "EUR"), Terms(750, "EUR", "month"), Terms(150, "EUR", "week")]

    plan = plan_prices([one_off, monthly, yearly], wanted)

    assert plan.keep == ["a"]
    assert plan.edit == [("b", Terms(750, "EUR", "month"))]
    assert plan.replace == []
    assert plan.create == [Terms(150, "EUR", "week")]
    assert plan.deactivate == ["c"]


def test_price_plan_replaces_a_sold_price_and_is_empty_when_nothing_changes() -> None:
    sold = ExistingPrice("a", Terms(890, "EUR"), used=True)
    assert plan_prices([sold], [Terms(990, "EUR")]).replace == [("a", Terms(990, "EUR"))]
    assert not plan_prices([sold], [Terms(890, "EUR")]).changes
    # A currency change is not "the same price in another amount": new price, old retired.
    plan = plan_prices([sold], [Terms(990, "USD")])
    assert plan.create == [Terms(990, "USD")] and plan.deactivate == ["a"]


# --------------------------------------------------------------------------------- locales


@pytest.mark.parametrize(
    ("raw", "tag"),
    [
        ("de", "de"),
        ("de-de", "de-DE"),
        ("DE_ch", "de-CH"),
        ("fr-CA", "fr-CA"),
        ("zh-hant-tw", "zh-Hant-TW"),
    ],
)
def test_locales_are_normalized_to_bcp47(raw: str, tag: str) -> None:
    assert normalize_locale(raw) == tag


@pytest.mark.parametrize("raw", ["xx", "en-XX", "und", "root", "", "e", "de--DE", "../etc", "*"])
def test_unknown_locales_are_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        normalize_locale(raw)


def test_accept_language_is_ordered_by_quality_and_ignores_junk() -> None:
    header = "fr-CH;q=0.8, de;q=0.9, xx, en;q=0, *;q=0.1, it;q=abc, es"
    assert parse_accept_language(header) == ["es", "de", "fr-CH"]
    assert parse_accept_language(None) == []
    assert parse_accept_language(";;,,") == []


def test_locale_chain_negotiates_then_falls_back_to_the_default_then_anything() -> None:
    available = ["de", "en", "fr-CH"]
    assert locale_chain(["de-AT"], available, "en") == ["de", "en", "fr-CH"]
    assert locale_chain(["fr"], available, "en") == ["fr-CH", "en", "de"]
    assert locale_chain(["ja"], available, "en") == ["en", "de", "fr-CH"]
    assert locale_chain([], ["it"], "en") == ["it"]


def test_texts_fall_back_per_field() -> None:
    translations = {
        "en": Texts(name="Mug", description="Stoneware", statement_descriptor="STORE MUG"),
        "de": Texts(name="Tasse"),
    }
    resolved = resolve_texts(translations, locale_chain(["de"], translations, "en"))
    assert (resolved.locale, resolved.name, resolved.description) == ("de", "Tasse", "Stoneware")
    assert resolved.statement_descriptor == "STORE MUG"


# --------------------------------------------------------------------------------- texts


@pytest.mark.parametrize("value", ["STORE MUG", "Shop 24", "ABCDE", "x" * 22, "Caf. & Co-op"])
def test_valid_statement_descriptors(value: str) -> None:
    assert check_statement_descriptor(value, "f") == value


@pytest.mark.parametrize(
    "value", ["MUG", "x" * 23, "12345", "Café Crème", "STORE*MUG", "O'Brien's", 'SAY "HI"', "A<B>C"]
)
def test_statement_descriptors_outside_the_card_networks_rules_are_refused(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_statement_descriptor(value, "translations.en.statement_descriptor")
    assert field_of(caught.value) == "translations.en.statement_descriptor"
    assert caught.value.code == "invalid_statement_descriptor"


# --------------------------------------------------------------------------------- cursors, tax


@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", fullmatch=True))
def test_cursor_round_trips_any_key(key: str) -> None:
    assert decode_cursor(encode_cursor(key)) == key


@pytest.mark.parametrize("cursor", ["", "!!!", "Li4v", "bXVn=", "not base64 at all", "////"])
def test_foreign_cursors_are_a_422(cursor: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_cursor(cursor)
    assert field_of(caught.value) == "cursor"


def test_tax_rates_for_a_code_or_else_the_general_ones() -> None:
    def rate(code: str | None, percentage: str) -> TaxRate:
        return TaxRate(
            id=percentage,
            country_code="DE",
            display_name=percentage,
            percentage=Decimal(percentage),
            inclusive=True,
            tax_code=code,
        )

    rates = [rate(None, "19"), rate("food", "7"), rate("books", "7.0")]
    assert [r.id for r in select_tax_rates(rates, "food")] == ["7"]
    assert [r.id for r in select_tax_rates(rates, "general")] == ["19"]
    assert [r.id for r in select_tax_rates(rates, None)] == ["19"]
    assert select_tax_rates([], "food") == []


def test_countries_are_iso_3166_alpha_2() -> None:
    assert check_country("de") == "DE"
    for bad in ("XX", "DEU", "", "EU"):
        with pytest.raises(InvalidInput):
            check_country(bad)
