"""Tax on an order's lines, in exact integer minor units. Pure: no I/O, no clock, no settings.

Rounding rule (docs/adr/004-money-and-rounding.md): tax is computed and rounded **per line**,
to a whole minor unit, **half up** (ties away from zero; amounts here are never negative):

- exclusive rate ``p``: ``tax = round(subtotal * p / 100)`` and ``total = subtotal + tax``;
- inclusive rate ``p``: ``net = round(subtotal / (1 + p / 100))``, ``tax = subtotal - net``
  and ``total = subtotal`` (the shown price already contains the tax).

``subtotal`` is ``unit_amount * quantity``, an exact integer, so the only rounding is of the
fractional minor unit of the tax itself; the rule is the same for 0-, 2- and 3-decimal
currencies, except that an exclusive tax is rounded half up to the currency's charge step
(``libs.contracts.money.charge_step``: 10 fils for BHD, JOD, KWD, OMR and TND, whose card
payments end in 0), so that a line of chargeable prices stays chargeable with its tax. The arithmetic is done on exact fractions, never floats or context-limited Decimals.
Order and tax-line figures are sums of the rounded line figures, so every total adds up to the
minor unit: order total = sum of line totals, order tax = sum of line taxes = sum of tax lines.

Known simplification: one tax rate per line (no compound or stacked rates such as GST + PST).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from libs.contracts.money import charge_step, normalize_currency

__all__ = [
    "TaxLine",
    "TaxRate",
    "TaxableLine",
    "TaxedLine",
    "TaxedTotals",
    "compute_taxes",
]

_HUNDRED = Fraction(100)


def _is_int(value: object) -> bool:
    # bool is an int subclass; True as a quantity is always a bug upstream.
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class TaxRate:
    """The tax rate applied to a line, mapped from the catalog's TaxRate by the orders service."""

    rate_id: str
    percentage: Decimal
    inclusive: bool
    display_name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.percentage, Decimal):
            # A float percentage (19.0) carries binary error into every tax amount.
            raise TypeError("percentage must be a Decimal")
        if not self.percentage.is_finite() or not 0 <= self.percentage <= 100:
            raise ValueError(f"percentage must be between 0 and 100, got {self.percentage}")


@dataclass(frozen=True, slots=True)
class TaxableLine:
    """One order line before tax: a unit price in minor units, a quantity, its tax rate if any."""

    unit_amount: int
    quantity: int
    tax_rate: TaxRate | None = None

    def __post_init__(self) -> None:
        if not _is_int(self.unit_amount) or self.unit_amount < 0:
            raise ValueError(f"unit_amount must be a non-negative int, got {self.unit_amount!r}")
        if not _is_int(self.quantity) or self.quantity < 1:
            raise ValueError(f"quantity must be a positive int, got {self.quantity!r}")


@dataclass(frozen=True, slots=True)
class TaxedLine:
    """One line after tax; ``taxable_amount`` is the net amount the tax was computed on."""

    unit_amount: int
    quantity: int
    rate_id: str | None
    subtotal: int
    taxable_amount: int
    tax: int
    total: int


@dataclass(frozen=True, slots=True)
class TaxLine:
    """The tax of all lines sharing one rate, as printed on an invoice."""

    rate_id: str
    display_name: str
    percentage: Decimal
    inclusive: bool
    taxable_amount: int
    amount: int


@dataclass(frozen=True, slots=True)
class TaxedTotals:
    """An order's lines (in input order), its tax lines (in first-seen order) and its totals."""

    currency: str
    lines: tuple[TaxedLine, ...]
    tax_lines: tuple[TaxLine, ...]
    subtotal: int
    tax: int
    total: int


def _round_half_up(value: Fraction) -> int:
    """Round a non-negative fraction to the nearest integer, ties up."""
    return (2 * value.numerator + value.denominator) // (2 * value.denominator)


def _tax_line(line: TaxableLine, step: int = 1) -> TaxedLine:
    subtotal = line.unit_amount * line.quantity
    rate = line.tax_rate
    if rate is None:
        net, tax, total = subtotal, 0, subtotal
    else:
        # Fraction(Decimal) is exact, so 7.7 % is exactly 77/1000, not a binary approximation.
        percentage = Fraction(rate.percentage)
        if rate.inclusive:
            net = _round_half_up(subtotal * _HUNDRED / (_HUNDRED + percentage))
            tax, total = subtotal - net, subtotal
        else:
            tax = _round_half_up(subtotal * percentage / _HUNDRED / step) * step
            net, total = subtotal, subtotal + tax
    return TaxedLine(
        unit_amount=line.unit_amount,
        quantity=line.quantity,
        rate_id=None if rate is None else rate.rate_id,
        subtotal=subtotal,
        taxable_amount=net,
        tax=tax,
        total=total,
    )


def compute_taxes(lines: Iterable[TaxableLine], currency: str) -> TaxedTotals:
    """Compute line taxes, tax lines per rate and order totals, rounding per line half up."""
    code = normalize_currency(currency)
    taxable = tuple(lines)
    step = charge_step(code)
    taxed = tuple(_tax_line(line, step) for line in taxable)

    rates: dict[str, TaxRate] = {}
    bases: dict[str, int] = {}
    amounts: dict[str, int] = {}
    for line, result in zip(taxable, taxed, strict=True):
        rate = line.tax_rate
        if rate is None:
            continue
        known = rates.setdefault(rate.rate_id, rate)
        if (known.percentage, known.inclusive) != (rate.percentage, rate.inclusive):
            # One id with two meanings would merge unrelated taxes into one invoice line.
            raise ValueError(f"tax rate {rate.rate_id!r} appears with different terms")
        bases[rate.rate_id] = bases.get(rate.rate_id, 0) + result.taxable_amount
        amounts[rate.rate_id] = amounts.get(rate.rate_id, 0) + result.tax

    tax_lines = tuple(
        TaxLine(
            rate_id=rate_id,
            display_name=rate.display_name,
            percentage=rate.percentage,
            inclusive=rate.inclusive,
            taxable_amount=bases[rate_id],
            amount=amounts[rate_id],
        )
        for rate_id, rate in rates.items()
    )
    return TaxedTotals(
        currency=code,
        lines=taxed,
        tax_lines=tax_lines,
        subtotal=sum(line.subtotal for line in taxed),
        tax=sum(line.tax for line in taxed),
        total=sum(line.total for line in taxed),
    )
