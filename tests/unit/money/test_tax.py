from __future__ import annotations

import random
from decimal import ROUND_HALF_UP, Decimal, localcontext
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.contracts.money import charge_step, currency_exponent
from services.orders.tax import TaxableLine, TaxedTotals, TaxRate, compute_taxes

# 0, 2 and 3 minor-unit digits, so the rounding rule is exercised at every scale.
CURRENCIES = ["JPY", "KRW", "EUR", "USD", "GBP", "KWD", "BHD", "TND"]


def a_rate(percentage: str, *, inclusive: bool, rate_id: str | None = None) -> TaxRate:
    return TaxRate(
        rate_id=rate_id or f"txr_{uuid4().hex[:8]}",
        percentage=Decimal(percentage),
        inclusive=inclusive,
        display_name=f"VAT {percentage}%",
    )


def one_line(unit_amount: int, rate: TaxRate | None, quantity: int = 1) -> TaxedTotals:
    return compute_taxes([TaxableLine(unit_amount, quantity, rate)], "EUR")


# -- strategies ---------------------------------------------------------------------------

# 0-30 % with up to two decimals, e.g. 19, 7.7, 8.25; ids drawn from a small pool so that
# several lines of one order share a rate, as they do in a real shop.
rates = st.builds(
    TaxRate,
    rate_id=st.sampled_from(["a", "b", "c", "d"]),
    percentage=st.integers(min_value=0, max_value=3000).map(lambda n: Decimal(n).scaleb(-2)),
    inclusive=st.booleans(),
)


@st.composite
def orders(draw: st.DrawFn) -> tuple[list[TaxableLine], str]:
    currency = draw(st.sampled_from(CURRENCIES))
    # The terms of a rate are fixed per id, so draw them once per order.
    terms = {rate.rate_id: rate for rate in draw(st.lists(rates, min_size=1, max_size=4))}
    max_unit = 10 ** (5 + currency_exponent(currency))
    lines = draw(
        st.lists(
            st.builds(
                TaxableLine,
                unit_amount=st.integers(min_value=0, max_value=max_unit),
                quantity=st.integers(min_value=1, max_value=1000),
                tax_rate=st.one_of(st.none(), st.sampled_from(sorted(terms.values(), key=str))),
            ),
            max_size=12,
        )
    )
    return lines, currency


def reference_tax(subtotal: int, rate: TaxRate, step: int = 1) -> int:
    """The rule of the ADR, written independently with Decimal at ample precision; `step` is
    the currency's charge step (an exclusive tax is rounded to it)."""
    with localcontext() as ctx:
        ctx.prec = 80
        p = rate.percentage
        if rate.inclusive:
            net = (Decimal(subtotal) * 100 / (100 + p)).quantize(Decimal(1), ROUND_HALF_UP)
            return subtotal - int(net)
        steps = (Decimal(subtotal) * p / 100 / step).quantize(Decimal(1), ROUND_HALF_UP)
        return int(steps) * step


# -- properties ----------------------------------------------------------------------------


@given(orders())
def test_order_totals_add_up_to_the_minor_unit(order: tuple[list[TaxableLine], str]) -> None:
    lines, currency = order
    result = compute_taxes(lines, currency)

    assert result.currency == currency
    assert len(result.lines) == len(lines)
    assert result.total == sum(line.total for line in result.lines)
    assert result.subtotal == sum(line.subtotal for line in result.lines)
    assert result.tax == sum(line.tax for line in result.lines)
    assert result.tax == sum(tax_line.amount for tax_line in result.tax_lines)
    exclusive_tax = sum(t.amount for t in result.tax_lines if not t.inclusive)
    assert result.total == result.subtotal + exclusive_tax


@given(orders())
def test_each_line_follows_its_rate(order: tuple[list[TaxableLine], str]) -> None:
    lines, currency = order
    result = compute_taxes(lines, currency)

    for line, taxed in zip(lines, result.lines, strict=True):
        assert taxed.subtotal == line.unit_amount * line.quantity
        assert min(taxed.subtotal, taxed.taxable_amount, taxed.tax, taxed.total) >= 0
        assert all(isinstance(v, int) for v in (taxed.subtotal, taxed.tax, taxed.total))
        rate = line.tax_rate
        if rate is None:
            assert (taxed.rate_id, taxed.tax, taxed.total) == (None, 0, taxed.subtotal)
            continue
        assert taxed.rate_id == rate.rate_id
        assert taxed.tax == reference_tax(taxed.subtotal, rate, charge_step(currency))
        if rate.percentage == 0:
            assert taxed.tax == 0
        if rate.inclusive:
            assert taxed.total == taxed.subtotal
            assert taxed.taxable_amount + taxed.tax == taxed.subtotal
            assert taxed.tax <= taxed.subtotal
        else:
            assert taxed.total == taxed.subtotal + taxed.tax
            assert taxed.taxable_amount == taxed.subtotal
        assert taxed.tax <= taxed.total


@given(orders())
def test_tax_lines_aggregate_their_lines(order: tuple[list[TaxableLine], str]) -> None:
    lines, currency = order
    result = compute_taxes(lines, currency)

    used = {line.tax_rate.rate_id: line.tax_rate for line in lines if line.tax_rate}
    assert [t.rate_id for t in result.tax_lines] == list(used)  # one per rate, first-seen order
    for tax_line in result.tax_lines:
        mine = [t for t in result.lines if t.rate_id == tax_line.rate_id]
        rate = used[tax_line.rate_id]
        assert (tax_line.percentage, tax_line.inclusive) == (rate.percentage, rate.inclusive)
        assert tax_line.amount == sum(t.tax for t in mine)
        assert tax_line.taxable_amount == sum(t.taxable_amount for t in mine)
        # Per-line rounding moves each line by at most half a minor unit (inclusive: of the
        # net, which the rate then scales; exclusive: half a charge step), so the tax line
        # stays that close to rate x base.
        exact = Decimal(tax_line.taxable_amount) * tax_line.percentage / 100
        step = 1 if tax_line.inclusive else charge_step(currency)
        slack = Decimal(len(mine)) * step / 2 * (1 + tax_line.percentage / 100)
        assert abs(tax_line.amount - exact) <= slack


@given(
    subtotal=st.integers(min_value=0, max_value=10**12),
    percentage=st.integers(min_value=0, max_value=3000).map(lambda n: Decimal(n).scaleb(-2)),
)
def test_inclusive_net_plus_tax_is_the_gross(subtotal: int, percentage: Decimal) -> None:
    rate = TaxRate(rate_id="r", percentage=percentage, inclusive=True)
    taxed = one_line(subtotal, rate).lines[0]
    assert taxed.taxable_amount + taxed.tax == subtotal == taxed.total
    assert 0 <= taxed.tax <= subtotal


@given(orders())
def test_result_does_not_depend_on_line_order(order: tuple[list[TaxableLine], str]) -> None:
    lines, currency = order
    forward, backward = compute_taxes(lines, currency), compute_taxes(lines[::-1], currency)
    assert (forward.subtotal, forward.tax, forward.total) == (
        backward.subtotal,
        backward.tax,
        backward.total,
    )


# -- hand-computed examples ------------------------------------------------------------------


def test_19_percent_inclusive_on_ten_euros() -> None:
    # 1000 / 1.19 = 840.336... -> net 840, tax 160
    taxed = one_line(1000, a_rate("19.0", inclusive=True)).lines[0]
    assert (taxed.subtotal, taxed.taxable_amount, taxed.tax, taxed.total) == (1000, 840, 160, 1000)


def test_7_7_percent_exclusive() -> None:
    # 1999 x 0.077 = 153.923 -> 154
    result = compute_taxes([TaxableLine(1999, 1, a_rate("7.7", inclusive=False))], "CHF")
    assert (result.subtotal, result.tax, result.total) == (1999, 154, 2153)


def test_yen_10_percent_inclusive() -> None:
    # 1100 / 1.1 = 1000 exactly -> tax 100; JPY has no minor unit, the rule is the same
    result = compute_taxes([TaxableLine(1100, 1, a_rate("10", inclusive=True))], "JPY")
    assert (result.subtotal, result.tax, result.total) == (1100, 100, 1100)
    assert result.tax_lines[0].taxable_amount == 1000


def test_kuwaiti_dinar_three_decimals_exclusive_tax_is_in_steps_of_ten_fils() -> None:
    # 12.350 KWD x 10 % = 1.235 KWD: a card charge ends in 0, so 1235 fils -> 1240 (half up)
    result = compute_taxes([TaxableLine(12350, 1, a_rate("10", inclusive=False))], "KWD")
    assert (result.subtotal, result.tax, result.total) == (12350, 1240, 13590)
    # 12.340 KWD x 10 % = 1234 fils -> 1230
    result = compute_taxes([TaxableLine(12340, 1, a_rate("10", inclusive=False))], "KWD")
    assert (result.subtotal, result.tax, result.total) == (12340, 1230, 13570)


def test_bahraini_dinar_three_decimals_inclusive() -> None:
    # 3 x 3.150 BHD incl. 5 % -> 9450 / 1.05 = 9000 net, 450 fils of VAT
    result = compute_taxes([TaxableLine(3150, 3, a_rate("5", inclusive=True))], "BHD")
    assert (result.subtotal, result.tax, result.total) == (9450, 450, 9450)


def test_quantity_multiplies_before_rounding() -> None:
    # 3 x 0.33 at 19 % exclusive: 99 x 0.19 = 18.81 -> 19 (not 3 x round(6.27) = 18)
    taxed = one_line(33, a_rate("19", inclusive=False), quantity=3).lines[0]
    assert (taxed.subtotal, taxed.tax, taxed.total) == (99, 19, 118)


def test_rounding_is_per_line() -> None:
    # Two lines of 0.05 at 10 %: each 0.5 cent -> 1, so 2 cents, not round(1.0) = 1.
    rate = a_rate("10", inclusive=False)
    result = compute_taxes([TaxableLine(5, 1, rate), TaxableLine(5, 1, rate)], "EUR")
    assert [line.tax for line in result.lines] == [1, 1]
    (tax_line,) = result.tax_lines
    assert (tax_line.taxable_amount, tax_line.amount) == (10, 2)
    assert (result.subtotal, result.tax, result.total) == (10, 2, 12)


def test_mixed_inclusive_and_exclusive_order() -> None:
    vat = a_rate("19", inclusive=True, rate_id="de-vat")
    sales = a_rate("8.25", inclusive=False, rate_id="us-tx")
    lines = [TaxableLine(1000, 2, vat), TaxableLine(2500, 1, sales), TaxableLine(300, 1, None)]
    result = compute_taxes(lines, "usd")

    # 2000 / 1.19 = 1680.67 -> 1681 net, 319 tax; 2500 x 0.0825 = 206.25 -> 206
    assert [(t.subtotal, t.tax, t.total) for t in result.lines] == [
        (2000, 319, 2000),
        (2500, 206, 2706),
        (300, 0, 300),
    ]
    assert [(t.rate_id, t.taxable_amount, t.amount) for t in result.tax_lines] == [
        ("de-vat", 1681, 319),
        ("us-tx", 2500, 206),
    ]
    assert (result.currency, result.subtotal, result.tax, result.total) == ("USD", 4800, 525, 5006)


@pytest.mark.parametrize("inclusive", [True, False])
def test_zero_rate_gives_a_zero_tax_line(inclusive: bool) -> None:
    result = one_line(1234, a_rate("0", inclusive=inclusive, rate_id="zero"))
    assert result.tax == 0
    assert result.total == 1234
    (tax_line,) = result.tax_lines
    assert (tax_line.rate_id, tax_line.taxable_amount, tax_line.amount) == ("zero", 1234, 0)


def test_lines_without_a_rate_have_no_tax_line() -> None:
    result = one_line(500, None)
    assert result.tax_lines == ()
    assert (result.subtotal, result.tax, result.total) == (500, 0, 500)


def test_empty_order() -> None:
    result = compute_taxes([], "EUR")
    assert (result.lines, result.tax_lines, result.subtotal, result.tax, result.total) == (
        (),
        (),
        0,
        0,
        0,
    )


def test_tax_line_keeps_the_rate_display_name() -> None:
    result = one_line(100, a_rate("20", inclusive=False))
    assert result.tax_lines[0].display_name == "VAT 20%"


# -- refused input -------------------------------------------------------------------------


def test_unknown_currency_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown currency"):
        compute_taxes([], "EURO")


@pytest.mark.parametrize(("unit_amount", "quantity"), [(-1, 1), (100, 0), (100, -2), (True, 1)])
def test_negative_or_empty_lines_are_refused(unit_amount: int, quantity: int) -> None:
    with pytest.raises(ValueError):
        TaxableLine(unit_amount, quantity, None)


@pytest.mark.parametrize("percentage", ["-1", "100.01", "NaN", "Infinity"])
def test_out_of_range_percentages_are_refused(percentage: str) -> None:
    with pytest.raises(ValueError):
        a_rate(percentage, inclusive=False)


def test_float_percentage_is_refused() -> None:
    with pytest.raises(TypeError):
        TaxRate(rate_id="r", percentage=19.0, inclusive=True)  # type: ignore[arg-type]


def test_one_rate_id_with_two_meanings_is_refused() -> None:
    lines = [
        TaxableLine(100, 1, a_rate("19", inclusive=True, rate_id="vat")),
        TaxableLine(100, 1, a_rate("7", inclusive=True, rate_id="vat")),
    ]
    with pytest.raises(ValueError, match="different terms"):
        compute_taxes(lines, "EUR")


STRIPE_THREE_DECIMAL = ["BHD", "KWD", "OMR", "JOD", "TND"]
RATES = ["5", "10", "15", "7.7", "19", "0.5", "21", "16"]


@pytest.mark.parametrize("currency", STRIPE_THREE_DECIMAL)
@pytest.mark.parametrize("inclusive", [False, True])
def test_every_order_of_chargeable_prices_is_chargeable_with_its_tax(
    currency: str, inclusive: bool
) -> None:
    """200 random orders per currency and kind of tax: every line and the order can be charged
    as Store charges them (one item per line of its total; to_stripe_amount refuses 5.125)."""
    from libs.contracts.payments import PaymentLine
    from services.payments.domain import charge_lines
    from services.payments.stripe_provider import check_stripe_limits

    generator = random.Random(f"{currency}-{inclusive}")
    for _ in range(200):
        lines = [
            TaxableLine(
                unit_amount=generator.randrange(10, 200_000, 10),  # a price ends in 0
                quantity=generator.randint(1, 9),
                tax_rate=a_rate(str(generator.choice(RATES)), inclusive=inclusive),
            )
            for _ in range(generator.randint(1, 8))
        ]
        result = compute_taxes(lines, currency)
        assert result.total == result.subtotal + (0 if inclusive else result.tax)
        assert result.total == sum(line.total for line in result.lines)
        payment_lines = [
            PaymentLine(
                pricing_id=f"p{index}",
                name="Line",
                unit_amount=line.unit_amount,
                quantity=line.quantity,
                total=line.total,
            )
            for index, line in enumerate(result.lines)
        ]
        charged = charge_lines(payment_lines, result.total, "payment")
        check_stripe_limits(currency, list(charged))  # raises amount_not_chargeable otherwise
        assert sum(line.unit_amount * line.quantity for line in charged) == result.total
