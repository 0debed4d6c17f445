"""The order snapshot: priced lines, taxes and totals that always add up; cursors; numbers."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libs.contracts.catalog import PricingInfo, TaxRateOut
from libs.contracts.events import CartLineSnapshot
from libs.contracts.orders import OrderDetails
from libs.runtime.problems import InvalidInput
from services.orders.domain import (
    CurrencyMismatch,
    Cursor,
    PricingUnavailable,
    build_details,
    choose_tax_rate,
    order_number,
    parse_country,
    parse_currency,
)
from tests.unit.orders.support import billing, new_id


def pricing(
    unit_amount: int,
    currency: str = "EUR",
    *,
    tax_code: str | None = None,
    active: bool = True,
    name: str = "Mug",
    descriptor: str | None = None,
) -> PricingInfo:
    return PricingInfo(
        pricing_id=new_id(),
        product_key=name.lower(),
        name=name,
        statement_descriptor=descriptor,
        unit_amount=unit_amount,
        currency=currency,
        active=active,
        tax_code=tax_code,
    )


def rate(percentage: str, *, inclusive: bool = False, tax_code: str | None = None) -> TaxRateOut:
    return TaxRateOut(
        id=new_id(),
        display_name=f"VAT {percentage}%",
        percentage=Decimal(percentage),
        country_code="DE",
        inclusive=inclusive,
        tax_code=tax_code,
    )


def details_for(
    items: list[tuple[PricingInfo, int]],
    rates: dict[str | None, TaxRateOut | None],
    currency: str = "EUR",
) -> OrderDetails:
    return build_details(
        cart_id="cart-1",
        customer_id="customer-1",
        locale="de",
        currency=currency,
        billing=billing(),
        lines=[CartLineSnapshot(pricing_id=p.pricing_id, quantity=q) for p, q in items],
        pricings={p.pricing_id: p for p, _ in items},
        tax_rates=rates,
    )


def assert_adds_up(details: OrderDetails) -> None:
    lines = details.lines
    assert details.subtotal == sum(line.subtotal for line in lines)
    assert details.tax == sum(line.tax for line in lines)
    assert details.tax == sum(tax_line.amount for tax_line in details.tax_lines)
    assert details.total == sum(line.total for line in lines)
    for line in lines:
        assert line.subtotal == line.unit_amount * line.quantity
        inclusive = any(t.inclusive for t in details.tax_lines if t.rate_id == line.tax_rate_id)
        if inclusive:
            assert line.total == line.subtotal == line.taxable_amount + line.tax
        else:
            assert line.total == line.subtotal + line.tax
            assert line.taxable_amount == line.subtotal


def test_exclusive_tax_is_added_per_line_rounded_half_up() -> None:
    mug, cap = pricing(1999, name="Mug"), pricing(1250, name="Cap", tax_code="reduced")
    standard, reduced = rate("19"), rate("7", tax_code="reduced")

    details = details_for([(mug, 2), (cap, 1)], {None: standard, "reduced": reduced})

    assert [(line.subtotal, line.tax, line.total) for line in details.lines] == [
        (3998, 760, 4758),  # 759.62 -> 760
        (1250, 88, 1338),  # 87.5 -> 88 (half up)
    ]
    assert (details.subtotal, details.tax, details.total) == (5248, 848, 6096)
    assert [(t.rate_id, t.taxable_amount, t.amount) for t in details.tax_lines] == [
        (standard.id, 3998, 760),
        (reduced.id, 1250, 88),
    ]
    assert_adds_up(details)


def test_inclusive_tax_is_contained_in_the_price() -> None:
    mug = pricing(1999)
    vat = rate("19", inclusive=True)

    details = details_for([(mug, 1)], {None: vat})

    line = details.lines[0]
    assert (line.subtotal, line.taxable_amount, line.tax, line.total) == (1999, 1680, 319, 1999)
    assert (details.subtotal, details.tax, details.total) == (1999, 319, 1999)
    assert details.tax_lines[0].inclusive is True
    assert_adds_up(details)


def test_mixed_inclusive_exclusive_and_untaxed_lines() -> None:
    gross, net, free = pricing(1190, tax_code="a"), pricing(1000, tax_code="b"), pricing(500)
    details = details_for(
        [(gross, 3), (net, 2), (free, 1)],
        {"a": rate("19", inclusive=True), "b": rate("7.7"), None: None},
    )
    assert [line.tax for line in details.lines] == [570, 154, 0]
    assert details.lines[2].tax_rate_id is None
    assert details.total == 3570 + 2154 + 500
    assert_adds_up(details)


@pytest.mark.parametrize(
    ("currency", "unit_amount", "quantity", "percentage", "tax"),
    [
        ("JPY", 1234, 3, "10", 370),  # 0 decimals: 370.2 yen -> 370
        ("EUR", 1234, 3, "10", 370),  # 2 decimals: the same rule on cents
        ("KWD", 12340, 1, "5", 620),  # 3 decimals: 617 fils -> 620 (tax in steps of 10 fils)
        ("KWD", 12300, 1, "5", 620),  # 615 fils -> 620 (half up, to the step)
        ("KWD", 12280, 1, "5", 610),  # 614 fils -> 610
    ],
)
def test_tax_in_zero_two_and_three_decimal_currencies(
    currency: str, unit_amount: int, quantity: int, percentage: str, tax: int
) -> None:
    details = details_for(
        [(pricing(unit_amount, currency), quantity)], {None: rate(percentage)}, currency
    )
    assert details.currency == currency
    assert details.tax == tax
    assert details.total == unit_amount * quantity + tax
    assert_adds_up(details)


currencies = st.sampled_from(["JPY", "EUR", "KWD"])
percentages = st.decimals(min_value=0, max_value=30, places=2, allow_nan=False)
line_specs = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=10_000_000),  # unit amount
        st.integers(min_value=1, max_value=50),  # quantity
        st.sampled_from([None, "a", "b", "c"]),  # tax code
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(
    currency=currencies,
    specs=line_specs,
    terms=st.dictionaries(
        st.sampled_from([None, "a", "b", "c"]),
        st.one_of(st.none(), st.tuples(percentages, st.booleans())),
    ),
)
def test_snapshot_always_adds_up(
    currency: str,
    specs: list[tuple[int, int, str | None]],
    terms: dict[str | None, tuple[Decimal, bool] | None],
) -> None:
    items = [(pricing(amount, currency, tax_code=code), qty) for amount, qty, code in specs]
    rates = {
        code: None if term is None else rate(str(term[0]), inclusive=term[1], tax_code=code)
        for code, term in terms.items()
    }
    details = details_for(items, rates, currency)
    assert_adds_up(details)
    # The JSON snapshot says the same as the model (percentages exact, as strings).
    again = OrderDetails.model_validate(details.model_dump(mode="json"))
    assert again == details


def test_snapshot_keeps_names_billing_descriptor_and_cart() -> None:
    first = pricing(500, name="Tasse", descriptor="STORE MUG")
    second = pricing(700, name="Kappe", descriptor="STORE CAP")
    details = details_for([(first, 1), (second, 1)], {None: None})
    dumped = details.model_dump(mode="json")
    assert [line["name"] for line in dumped["lines"]] == ["Tasse", "Kappe"]
    assert dumped["statement_descriptor"] == "STORE MUG"
    assert dumped["billing"]["address"]["country"] == "DE"
    assert dumped["cart_id"] == "cart-1"
    assert dumped["customer_id"] == "customer-1"
    assert dumped["locale"] == "de"


def test_missing_or_inactive_pricing_is_named() -> None:
    sold_out = pricing(500, active=False)
    mug = pricing(500)
    lines = [
        CartLineSnapshot(pricing_id=mug.pricing_id, quantity=1),
        CartLineSnapshot(pricing_id=sold_out.pricing_id, quantity=1),
        CartLineSnapshot(pricing_id="gone", quantity=1),
    ]
    with pytest.raises(PricingUnavailable) as caught:
        build_details(
            cart_id="c",
            customer_id=None,
            locale="en",
            currency="EUR",
            billing=billing(),
            lines=lines,
            pricings={p.pricing_id: p for p in (mug, sold_out)},
            tax_rates={},
        )
    assert caught.value.status == 409
    assert caught.value.extra["pricing_ids"] == sorted(["gone", sold_out.pricing_id])
    assert "gone" in str(caught.value.detail)


def test_lines_in_another_currency_are_refused() -> None:
    euro, dollar = pricing(500, "EUR"), pricing(500, "USD")
    with pytest.raises(CurrencyMismatch) as caught:
        details_for([(euro, 1), (dollar, 1)], {None: None}, "EUR")
    assert caught.value.code == "currency_mismatch"
    assert caught.value.extra["pricing_ids"] == [dollar.pricing_id]


def test_a_rate_made_for_the_tax_code_wins_over_the_default() -> None:
    default, books = rate("19"), rate("7", tax_code="books")
    assert choose_tax_rate([default, books], "books") == books
    assert choose_tax_rate([default, books], "food") == default
    assert choose_tax_rate([default, books], None) == default
    assert choose_tax_rate([books], None) is None
    twin_a, twin_b = sorted([rate("5"), rate("6")], key=lambda r: r.id)
    assert choose_tax_rate([twin_b, twin_a], None) == twin_a


def test_cursor_round_trips_and_refuses_garbage() -> None:
    cursor = Cursor(created_at=datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC), order_id="o-1")
    assert Cursor.decode(cursor.encode()) == cursor
    for garbage in ["", "x", "bm90IGpzb24", "WzEsMl0", "WyIyMDI2LTAxLTAyIiwib2QiXQ"]:
        with pytest.raises(InvalidInput) as caught:
            Cursor.decode(garbage)
        assert caught.value.code == "invalid_cursor"


def test_order_number_and_input_parsing() -> None:
    assert order_number(2026, 123) == "2026-000123"
    assert order_number(2027, 12_345_678) == "2027-12345678"
    assert parse_currency(" eur ") == "EUR"
    assert parse_country("de") == "DE"
    with pytest.raises(InvalidInput) as caught:
        parse_currency("EURO")
    assert [e.field for e in caught.value.errors or []] == ["currency"]
    with pytest.raises(InvalidInput) as caught:
        parse_country("XX")
    assert [e.field for e in caught.value.errors or []] == ["billing.address.country"]


def test_the_contract_example_is_a_valid_snapshot() -> None:
    example = OrderDetails.model_json_schema()["examples"][0]
    assert_adds_up(OrderDetails.model_validate(example))
