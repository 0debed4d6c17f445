"""Money as it crosses service boundaries: integer minor units plus an ISO 4217 currency.

Every amount in Store is an ``int`` of minor units (cents, fils, yen) so that sums are exact;
``Decimal`` appears only at the edges (configuration, display, provider APIs). The number of
minor-unit digits of a currency is its ISO 4217 exponent, not the CLDR display precision:
CLDR shows HUF or IDR without decimals, but ISO 4217 (and the banks) still count 1/100 units.
See docs/adr/004-money-and-rounding.md.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Annotated, Final

import pycountry
from babel.numbers import format_currency, get_currency_precision
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

__all__ = [
    "CurrencyCode",
    "CurrencyMismatchError",
    "MinorUnits",
    "Money",
    "active_currencies",
    "currency_exponent",
    "format_money",
    "from_decimal",
    "normalize_currency",
    "to_decimal",
]

# ISO 4217 "list one" also holds codes that are not money a shop can charge: precious metals,
# funds and indexed units of account, bond-market units, SDR-like accounting units, and the
# testing / "no currency" codes. Accepting them would let a typo'd or placeholder price through.
NON_TENDER_CODES: Final[frozenset[str]] = frozenset(
    {
        # precious metals
        "XAG", "XAU", "XPD", "XPT",
        # funds and indexed units (ISO 4217 marks them as funds)
        "BOV", "CHE", "CHW", "CLF", "COU", "MXV", "USN", "UYI", "UYW",
        # bond-market and accounting units of account
        "XAD", "XBA", "XBB", "XBC", "XBD", "XDR", "XSU", "XUA",
        # reserved for testing, and "no currency involved"
        "XTS", "XXX",
    }
)  # fmt: skip

# Where CLDR's *display* digits (what babel reports) differ from the ISO 4217 minor unit.
# CLDR drops decimals that are no longer used in everyday cash, but the ISO 4217 exponent is what
# payment providers, banks and our stored minor units follow. Checked against ISO 4217 list one;
# tests/unit/money/test_money.py pins the full set of 0- and 3-digit currencies.
ISO_4217_EXPONENT_OVERRIDES: Final[dict[str, int]] = {
    "AFN": 2,  # Afghani
    "ALL": 2,  # Lek
    "COP": 2,  # Colombian peso
    "HUF": 2,  # Forint
    "IDR": 2,  # Rupiah
    "IQD": 3,  # Iraqi dinar (CLDR: 0)
    "IRR": 2,  # Iranian rial
    "KPW": 2,  # North Korean won
    "LAK": 2,  # Lao kip
    "LBP": 2,  # Lebanese pound
    "MGA": 2,  # Malagasy ariary
    "MMK": 2,  # Kyat
    "SOS": 2,  # Somali shilling
    "SYP": 2,  # Syrian pound
    "YER": 2,  # Yemeni rial
}

CURRENCY_PATTERN: Final = r"^[A-Z]{3}$"


class CurrencyMismatchError(ValueError):
    """Two amounts in different currencies were combined."""


@cache
def active_currencies() -> frozenset[str]:
    """Return every ISO 4217 code that can price something (no metals, funds or test codes)."""
    # Built lazily, not at import: pycountry loads its database on first use.
    return frozenset(c.alpha_3 for c in pycountry.currencies) - NON_TENDER_CODES


def normalize_currency(code: str) -> str:
    """Return the upper-case ISO 4217 code, or raise ValueError if it is not an active currency."""
    if not isinstance(code, str):
        raise TypeError(f"currency code must be a str, not {type(code).__name__}")
    candidate = code.strip().upper()
    if candidate not in active_currencies():
        raise ValueError(f"unknown currency {candidate!r}")
    return candidate


@cache
def _exponent(code: str) -> int:
    if code in ISO_4217_EXPONENT_OVERRIDES:
        return ISO_4217_EXPONENT_OVERRIDES[code]
    return int(get_currency_precision(code))


def currency_exponent(code: str) -> int:
    """Return the ISO 4217 minor-unit exponent of a currency (JPY 0, EUR 2, KWD 3)."""
    return _exponent(normalize_currency(code))


# Where a card payment cannot carry every minor unit: the card networks settle these
# three-decimal currencies in hundredths, so a charge's last digit must be 0 (Stripe refuses
# 5.125 KWD). Tax is rounded to this step, so every order of chargeable prices is chargeable
# (docs/adr/004-money-and-rounding.md).
CHARGE_STEP: Final[dict[str, int]] = {"BHD": 10, "JOD": 10, "KWD": 10, "OMR": 10, "TND": 10}


def charge_step(code: str) -> int:
    """The minor units a chargeable amount of this currency is a multiple of (usually 1)."""
    return CHARGE_STEP.get(normalize_currency(code), 1)


def _validate_currency_code(value: str) -> str:
    return normalize_currency(value)


# The JSON Schema advertises the canonical form; the validator also accepts " eur " and
# normalizes it, because being lenient on input costs nothing and outputs are always canonical.
CurrencyCode = Annotated[
    str,
    AfterValidator(_validate_currency_code),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": CURRENCY_PATTERN,
            "description": "ISO 4217 alphabetic currency code",
            "examples": ["EUR"],
        }
    ),
]

MinorUnits = Annotated[int, Field(ge=0, description="Amount in the currency's minor units")]


class Money(BaseModel):
    """An exact amount of one currency, in minor units (may be negative, e.g. a refund)."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={"examples": [{"amount": 1999, "currency": "EUR"}]},
    )

    amount: int
    currency: CurrencyCode

    def __add__(self, other: object) -> Money:
        """Add two amounts of the same currency; mixing currencies raises CurrencyMismatchError."""
        if not isinstance(other, Money):
            return NotImplemented
        if other.currency != self.currency:
            raise CurrencyMismatchError(f"cannot add {other.currency} to {self.currency}")
        return Money(amount=self.amount + other.amount, currency=self.currency)


def to_decimal(amount: int, currency: str) -> Decimal:
    """Convert minor units to an exact Decimal of major units (1999 EUR -> Decimal('19.99'))."""
    sign, digits, _ = Decimal(amount).as_tuple()
    # Rebuilding from the digit tuple is exact at any size; division or scaleb() would round
    # to the context precision (28 digits) for very large amounts.
    return Decimal((sign, digits, -currency_exponent(currency)))


def from_decimal(value: Decimal, currency: str, rounding: str = ROUND_HALF_UP) -> int:
    """Convert major units to integer minor units, rounding the fractional minor unit."""
    if isinstance(value, float):
        # A float has already lost the amount (0.1 is not 1/10); make the caller pick a Decimal.
        raise TypeError("from_decimal() needs a Decimal, not a float")
    value = Decimal(value)
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {value}")
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite, checked above
    shifted = Decimal((sign, digits, exponent + currency_exponent(currency)))
    # to_integral_value() is exact regardless of context precision, unlike quantize().
    return int(shifted.to_integral_value(rounding=rounding))


def format_money(amount: int, currency: str, locale: str = "en") -> str:
    """Format minor units for display in a locale (never for storage or arithmetic)."""
    code = normalize_currency(currency)
    # Locale conventions decide the digits shown (CLDR shows HUF without decimals), but
    # decimal_quantization=False keeps a non-zero fraction visible instead of rounding it away.
    return format_currency(
        to_decimal(amount, code), code, locale=locale, decimal_quantization=False
    )
