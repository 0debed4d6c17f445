from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from libs.contracts.money import (
    CurrencyCode,
    CurrencyMismatchError,
    MinorUnits,
    Money,
    active_currencies,
    currency_exponent,
    format_money,
    from_decimal,
    normalize_currency,
    to_decimal,
)

# ISO 4217 list one, minor unit column: every tender currency not listed here has 2 digits.
ISO_ZERO_DECIMALS = {
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW",
    "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF",
}  # fmt: skip
ISO_THREE_DECIMALS = {"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"}

all_currencies = st.sampled_from(sorted(active_currencies()))


class Priced(BaseModel):
    currency: CurrencyCode
    amount: MinorUnits = 0


@pytest.mark.parametrize(
    ("code", "exponent"),
    [("JPY", 0), ("KRW", 0), ("ISK", 0), ("CLP", 0), ("UGX", 0), ("EUR", 2), ("USD", 2),
     ("HUF", 2), ("IDR", 2), ("KWD", 3), ("BHD", 3), ("JOD", 3), ("OMR", 3), ("TND", 3),
     ("IQD", 3)],
)  # fmt: skip
def test_exponent_follows_iso_4217(code: str, exponent: int) -> None:
    assert currency_exponent(code) == exponent


def test_every_active_currency_has_its_iso_4217_exponent() -> None:
    for code in active_currencies():
        expected = 0 if code in ISO_ZERO_DECIMALS else 3 if code in ISO_THREE_DECIMALS else 2
        assert currency_exponent(code) == expected, code


def test_the_iso_tables_only_name_active_currencies() -> None:
    assert ISO_ZERO_DECIMALS | ISO_THREE_DECIMALS <= active_currencies()


@pytest.mark.parametrize("code", ["eur", " usd ", "Jpy\n"])
def test_normalize_strips_and_uppercases(code: str) -> None:
    assert normalize_currency(code) == code.strip().upper()


@pytest.mark.parametrize(
    "code", ["XYZ", "EURO", "", "EU", "XAU", "XAG", "XXX", "XTS", "XDR", "CLF", "DEM", "123"]
)
def test_unknown_or_non_tender_codes_are_rejected(code: str) -> None:
    with pytest.raises(ValueError, match=r"^unknown currency '"):
        normalize_currency(code)


def test_rejection_message_names_the_code() -> None:
    with pytest.raises(ValueError) as error:
        normalize_currency(" xyz")
    assert str(error.value) == "unknown currency 'XYZ'"


def test_exponent_of_unknown_currency_is_refused() -> None:
    with pytest.raises(ValueError):
        currency_exponent("ABC")


def test_currency_code_type_normalizes() -> None:
    assert Priced(currency=" eur").currency == "EUR"


@pytest.mark.parametrize("code", ["EURO", "XXX", "XAU", "", "eu"])
def test_currency_code_type_rejects_non_currencies(code: str) -> None:
    with pytest.raises(ValidationError):
        Priced(currency=code)


def test_currency_code_schema_has_the_iso_pattern() -> None:
    schema = Priced.model_json_schema()["properties"]["currency"]
    assert schema["type"] == "string"
    assert schema["pattern"] == "^[A-Z]{3}$"


def test_minor_units_must_not_be_negative() -> None:
    with pytest.raises(ValidationError):
        Priced(currency="EUR", amount=-1)
    assert Priced.model_json_schema()["properties"]["amount"]["minimum"] == 0


def test_money_adds_same_currency() -> None:
    total = Money(amount=1999, currency="EUR") + Money(amount=1, currency="eur")
    assert total == Money(amount=2000, currency="EUR")


def test_money_refuses_mixed_currencies() -> None:
    with pytest.raises(CurrencyMismatchError):
        Money(amount=1, currency="EUR") + Money(amount=1, currency="USD")


def test_money_refuses_other_types() -> None:
    with pytest.raises(TypeError):
        Money(amount=1, currency="EUR") + 1


def test_money_is_frozen() -> None:
    money = Money(amount=1, currency="EUR")
    with pytest.raises(ValidationError):
        money.amount = 2


def test_money_rejects_fractional_amounts() -> None:
    with pytest.raises(ValidationError):
        Money(amount=1.5, currency="EUR")  # type: ignore[arg-type]


def test_money_json_round_trip() -> None:
    money = Money(amount=-500, currency="KWD")
    assert Money.model_validate_json(money.model_dump_json()) == money


@pytest.mark.parametrize(
    ("amount", "currency", "major"),
    [(1999, "EUR", "19.99"), (1100, "JPY", "1100"), (12345, "KWD", "12.345"), (0, "USD", "0.00"),
     (-5, "BHD", "-0.005"), (10**40 + 7, "EUR", "1" + "0" * 37 + "0.07")],
)  # fmt: skip
def test_to_decimal(amount: int, currency: str, major: str) -> None:
    value = to_decimal(amount, currency)
    assert value == Decimal(major)
    assert str(value) == major


@pytest.mark.parametrize(
    ("major", "currency", "minor"),
    [("19.99", "EUR", 1999), ("0.125", "EUR", 13), ("0.124", "EUR", 12), ("-0.125", "EUR", -13),
     ("0.5", "JPY", 1), ("1E+3", "JPY", 1000), ("1.0005", "KWD", 1001), ("12.3", "TND", 12300)],
)  # fmt: skip
def test_from_decimal_rounds_half_up_by_default(major: str, currency: str, minor: int) -> None:
    assert from_decimal(Decimal(major), currency) == minor


def test_from_decimal_takes_other_rounding_modes() -> None:
    assert from_decimal(Decimal("0.125"), "EUR", rounding=ROUND_HALF_EVEN) == 12
    assert from_decimal(Decimal("0.129"), "EUR", rounding=ROUND_DOWN) == 12


def test_from_decimal_refuses_floats_and_non_finite_values() -> None:
    with pytest.raises(TypeError):
        from_decimal(0.1, "EUR")  # type: ignore[arg-type]
    for value in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(ValueError):
            from_decimal(Decimal(value), "EUR")


@given(currency=all_currencies, amount=st.integers(min_value=-(10**30), max_value=10**30))
def test_decimal_round_trip_for_every_currency(currency: str, amount: int) -> None:
    value = to_decimal(amount, currency)
    assert value.as_tuple().exponent == -currency_exponent(currency)
    assert from_decimal(value, currency) == amount


@given(
    currency=all_currencies,
    value=st.decimals(min_value=-(10**12), max_value=10**12, places=6, allow_nan=False),
)
def test_from_decimal_is_within_half_a_minor_unit(currency: str, value: Decimal) -> None:
    minor = from_decimal(value, currency)
    assert abs(to_decimal(minor, currency) - value) <= Decimal(5).scaleb(
        -currency_exponent(currency) - 1
    )


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "shown"),
    [(1999, "EUR", "en", "€19.99"), (1999, "EUR", "de_DE", "19,99\xa0€"),
     (1100, "JPY", "ja", "￥1,100"), (12345, "KWD", "en", "KWD12.345"),
     (1234, "HUF", "hu", "12,34\xa0Ft")],
)  # fmt: skip
def test_format_money_for_display(amount: int, currency: str, locale: str, shown: str) -> None:
    assert format_money(amount, currency, locale) == shown
