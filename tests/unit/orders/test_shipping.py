"""Shipping in the order snapshot: the amount (free over a threshold), its tax at the
destination's rate, inclusive or exclusive, in 0-, 2- and 3-decimal currencies, and totals
that add up exactly. Pure: build_details on hand-made catalog answers."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libs.contracts.catalog import PricingInfo, ShippingMethodOut, TaxRateOut
from libs.contracts.events import CartLineSnapshot
from libs.contracts.money import charge_step
from libs.contracts.orders import OrderDetails, ShippingChoice
from services.orders.domain import (
    ShippingNotRequired,
    ShippingRequired,
    ShippingTerms,
    build_details,
    check_shipping,
    requires_shipping,
)
from tests.unit.orders.support import billing, new_id, shipping_address


def pricing(unit_amount: int, currency: str, *, shippable: bool = True) -> PricingInfo:
    return PricingInfo(
        pricing_id=new_id(),
        product_key="mug",
        name="Mug",
        unit_amount=unit_amount,
        currency=currency,
        active=True,
        shippable=shippable,
    )


def rate(percentage: str, *, inclusive: bool, country: str = "DE") -> TaxRateOut:
    return TaxRateOut(
        id=new_id(),
        display_name=f"VAT {percentage}%",
        percentage=Decimal(percentage),
        country_code=country,
        inclusive=inclusive,
    )


def method(amount: int, currency: str, *, free_over: int | None = None) -> ShippingMethodOut:
    return ShippingMethodOut(
        code="standard",
        name="Standard",
        currency=currency,
        amount=amount,
        free_over=free_over,
        tax_code="shipping",
        delivery_days_min=2,
        delivery_days_max=5,
    )


def details(
    unit_amount: int,
    quantity: int,
    currency: str,
    shipping: ShippingMethodOut,
    *,
    goods_rate: TaxRateOut | None,
    shipping_rate: TaxRateOut | None,
) -> OrderDetails:
    info = pricing(unit_amount, currency)
    return build_details(
        cart_id=new_id(),
        customer_id=new_id(),
        locale="en",
        currency=currency,
        billing=billing("DE"),
        lines=[CartLineSnapshot(pricing_id=info.pricing_id, quantity=quantity)],
        pricings={info.pricing_id: info},
        tax_rates={None: goods_rate},
        shipping=ShippingTerms(
            choice=ShippingChoice(method="standard", address=shipping_address("DE")),
            method=shipping,
            tax_rate=shipping_rate,
        ),
    )


# Expected figures worked out by hand, per ADR 004: inclusive net = round(gross / (1 + p)),
# exclusive tax = round(net * p / step) * step, half up.
CASES = [
    # currency, unit, qty, shipping, inclusive, percent, (shipping tax, shipping total, order total)
    ("EUR", 1800, 1, 490, True, "19", (78, 490, 2290)),  # 490 - round(411.76) = 78
    ("EUR", 1800, 1, 490, False, "5", (25, 515, 2405)),  # 24.5 -> 25; line tax 90
    ("JPY", 1800, 1, 650, True, "10", (59, 650, 2450)),  # 650 - round(590.9) = 59
    ("JPY", 1800, 1, 650, False, "8", (52, 702, 2646)),  # line tax 144
    ("BHD", 5120, 1, 1250, True, "10", (114, 1250, 6370)),  # 1250 - round(1136.36) = 114
    # 3-decimal exclusive: the tax is rounded to the 10-fils charge step, like the lines'.
    ("BHD", 5120, 1, 1250, False, "10", (130, 1380, 7010)),  # 125 fils -> 130; line tax 510
]


@pytest.mark.parametrize(
    ("currency", "unit", "qty", "price", "inclusive", "percent", "want"), CASES
)
def test_shipping_is_taxed_like_a_line_and_is_part_of_the_total(
    currency: str,
    unit: int,
    qty: int,
    price: int,
    inclusive: bool,
    percent: str,
    want: tuple[int, int, int],
) -> None:
    vat = rate(percent, inclusive=inclusive)
    snapshot = details(
        unit, qty, currency, method(price, currency), goods_rate=vat, shipping_rate=vat
    )
    shipping = snapshot.shipping
    assert shipping is not None
    assert (shipping.tax, shipping.total, snapshot.total) == want
    assert shipping.amount == price
    assert shipping.taxable_amount == (price - shipping.tax if inclusive else price)
    # One rate: goods and shipping share its tax line, which holds both taxes.
    [tax_line] = snapshot.tax_lines
    assert tax_line.amount == snapshot.tax == snapshot.lines[0].tax + shipping.tax
    assert snapshot.total == snapshot.lines[0].total + shipping.total
    assert snapshot.subtotal == unit * qty  # the goods only
    if currency == "BHD":
        assert shipping.total % charge_step("BHD") == 0 and snapshot.total % 10 == 0


def test_free_over_is_judged_on_the_goods_subtotal_before_exclusive_tax() -> None:
    vat = rate("10", inclusive=False)
    # 4,545 + 10 % is 5,000 with tax, but the goods cost 4,545: shipping is charged.
    below = details(
        4545, 1, "EUR", method(490, "EUR", free_over=5000), goods_rate=vat, shipping_rate=vat
    )
    assert below.shipping is not None and not below.shipping.free
    assert below.shipping.amount == 490 and below.shipping.tax == 49
    at = details(
        2500, 2, "EUR", method(490, "EUR", free_over=5000), goods_rate=vat, shipping_rate=vat
    )
    assert at.shipping is not None and at.shipping.free
    assert (at.shipping.amount, at.shipping.tax, at.shipping.total) == (0, 0, 0)
    assert at.total == 5000 + 500


def test_shipping_takes_the_destinations_rate_not_the_goods() -> None:
    goods, abroad = rate("19", inclusive=True), rate("5", inclusive=False, country="CA")
    snapshot = details(1800, 1, "EUR", method(490, "EUR"), goods_rate=goods, shipping_rate=abroad)
    assert snapshot.shipping is not None
    assert snapshot.lines[0].tax == 287 and snapshot.shipping.tax == 25
    assert snapshot.shipping.tax_rate_id == abroad.id
    assert [line.amount for line in snapshot.tax_lines] == [287, 25]
    assert snapshot.total == 1800 + 490 + 25


def test_a_destination_without_tax_ships_untaxed() -> None:
    snapshot = details(1800, 1, "EUR", method(490, "EUR"), goods_rate=None, shipping_rate=None)
    assert snapshot.shipping is not None
    assert (snapshot.shipping.tax, snapshot.shipping.total, snapshot.total) == (0, 490, 2290)


@settings(max_examples=200, deadline=None)
@given(
    currency=st.sampled_from(["EUR", "JPY", "BHD"]),
    units=st.lists(st.integers(0, 100_000), min_size=1, max_size=3),
    price=st.integers(0, 5_000),
    percent=st.sampled_from(["0", "5", "7.7", "19", "20", "25"]),
    inclusive=st.booleans(),
)
def test_totals_with_shipping_always_add_up(
    currency: str, units: list[int], price: int, percent: str, inclusive: bool
) -> None:
    step = charge_step(currency)
    vat = rate(percent, inclusive=inclusive)
    infos = [pricing(unit * step, currency) for unit in units]
    snapshot = build_details(
        cart_id=new_id(),
        customer_id=None,
        locale="en",
        currency=currency,
        billing=billing("DE"),
        lines=[CartLineSnapshot(pricing_id=info.pricing_id, quantity=1) for info in infos],
        pricings={info.pricing_id: info for info in infos},
        tax_rates={None: vat},
        shipping=ShippingTerms(
            choice=ShippingChoice(method="standard", address=shipping_address()),
            method=method(price * step, currency),
            tax_rate=vat,
        ),
    )
    shipping = snapshot.shipping
    assert shipping is not None
    assert snapshot.total == sum(line.total for line in snapshot.lines) + shipping.total
    assert snapshot.tax == sum(line.tax for line in snapshot.lines) + shipping.tax
    assert snapshot.tax == sum(line.amount for line in snapshot.tax_lines)
    if not inclusive:
        assert snapshot.total % step == 0  # still chargeable in BHD


def test_shipping_is_required_exactly_when_something_ships() -> None:
    goods, download = pricing(100, "EUR"), pricing(100, "EUR", shippable=False)
    prices = {goods.pricing_id: goods, download.pricing_id: download}
    both = [CartLineSnapshot(pricing_id=p, quantity=1) for p in prices]
    only_download = [CartLineSnapshot(pricing_id=download.pricing_id, quantity=1)]
    assert requires_shipping(both, prices) and not requires_shipping(only_download, prices)
    choice = ShippingChoice(method="standard", address=shipping_address())
    with pytest.raises(ShippingRequired) as required:
        check_shipping(required=True, choice=None)
    assert required.value.code == "shipping_required" and required.value.status == 422
    with pytest.raises(ShippingNotRequired) as needless:
        check_shipping(required=False, choice=choice)
    assert needless.value.code == "shipping_not_required" and needless.value.status == 422
    check_shipping(required=True, choice=choice)
    check_shipping(required=False, choice=None)
