"""The cart's pure rules: adding, merging, summarizing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.contracts.catalog import PricingInfo
from libs.contracts.common import Owner
from services.cart.domain import (
    Cart,
    CurrencyMismatch,
    Limits,
    Line,
    QuantityExceedsMaximum,
    TooManyLines,
    check_add,
    plan_merge,
    summarize,
)

LIMITS = Limits(max_quantity=10, max_lines=5)
OWNER = Owner(kind="user", id="u")


def cart(*lines: tuple[str, int], currency: str | None = "EUR") -> Cart:
    return Cart(
        cart_id="c",
        owner=OWNER,
        currency=currency if lines else None,
        lines=tuple(Line(f"l-{p}", p, q, i) for i, (p, q) in enumerate(lines, 1)),
    )


def info(pricing_id: str, amount: int, **extra: object) -> PricingInfo:
    values: dict[str, object] = {
        "pricing_id": pricing_id,
        "product_key": f"k-{pricing_id}",
        "name": f"Name {pricing_id}",
        "unit_amount": amount,
        "currency": "EUR",
        "active": True,
    }
    values.update(extra)
    return PricingInfo.model_validate(values)


def test_the_same_price_adds_up_within_the_maximum() -> None:
    current = cart(("a", 4))
    assert check_add(current, pricing_id="a", quantity=6, currency="EUR", limits=LIMITS) == 10
    with pytest.raises(QuantityExceedsMaximum) as error:
        check_add(current, pricing_id="a", quantity=7, currency="EUR", limits=LIMITS)
    assert error.value.status == 422
    assert error.value.extra == {"maximum": 10, "current": 4}


def test_a_cart_holds_one_currency_until_it_is_empty() -> None:
    with pytest.raises(CurrencyMismatch) as error:
        check_add(cart(("a", 1)), pricing_id="b", quantity=1, currency="USD", limits=LIMITS)
    assert error.value.status == 409
    assert "EUR" in str(error.value.detail) and "USD" in str(error.value.detail)
    assert check_add(cart(), pricing_id="b", quantity=1, currency="USD", limits=LIMITS) == 1


def test_a_cart_holds_a_limited_number_of_lines() -> None:
    full = cart(*((f"p{i}", 1) for i in range(5)))
    with pytest.raises(TooManyLines):
        check_add(full, pricing_id="new", quantity=1, currency="EUR", limits=LIMITS)
    assert check_add(full, pricing_id="p0", quantity=1, currency="EUR", limits=LIMITS) == 2


def test_merge_adds_up_caps_and_reports_what_did_not_move() -> None:
    plan = plan_merge(
        target=cart(("a", 8), ("b", 1)).lines,
        target_currency="EUR",
        source=cart(("a", 5), ("c", 2)).lines,
        source_currency="EUR",
        limits=LIMITS,
    )
    assert plan.updates == {"a": 10}
    assert plan.additions == [("c", 2)]
    assert [(m.pricing_id, m.quantity) for m in plan.moved] == [("a", 2), ("c", 2)]
    assert [(d.pricing_id, d.quantity, d.reason) for d in plan.dropped] == [
        ("a", 3, "quantity_capped")
    ]


def test_merge_currency_conflict_keeps_the_users_cart() -> None:
    plan = plan_merge(
        target=cart(("a", 1)).lines,
        target_currency="EUR",
        source=cart(("b", 2), ("c", 1), currency="USD").lines,
        source_currency="USD",
        limits=LIMITS,
    )
    assert plan.currency == "EUR"
    assert not plan.updates and not plan.additions and not plan.moved
    assert [(d.pricing_id, d.quantity, d.reason) for d in plan.dropped] == [
        ("b", 2, "currency_mismatch"),
        ("c", 1, "currency_mismatch"),
    ]


def test_an_empty_user_cart_takes_the_anonymous_currency() -> None:
    plan = plan_merge(
        target=(),
        target_currency=None,
        source=cart(("b", 2), currency="USD").lines,
        source_currency="USD",
        limits=LIMITS,
    )
    assert plan.currency == "USD"
    assert plan.additions == [("b", 2)]


def test_merge_stops_adding_lines_when_the_cart_is_full() -> None:
    plan = plan_merge(
        target=cart(*((f"p{i}", 1) for i in range(4))).lines,
        target_currency="EUR",
        source=cart(("x", 1), ("y", 2)).lines,
        source_currency="EUR",
        limits=LIMITS,
    )
    assert plan.additions == [("x", 1)]
    assert [(d.pricing_id, d.reason) for d in plan.dropped] == [("y", "too_many_lines")]


quantities = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d", "e", "f"]), st.integers(1, 10), max_size=6
)


@given(target=quantities, source=quantities)
def test_merge_gives_per_price_sums_capped_at_the_maximum(
    target: dict[str, int], source: dict[str, int]
) -> None:
    limits = Limits(max_quantity=10, max_lines=100)
    plan = plan_merge(
        target=cart(*target.items()).lines,
        target_currency="EUR" if target else None,
        source=cart(*source.items()).lines,
        source_currency="EUR" if source else None,
        limits=limits,
    )
    result = dict(target) | plan.updates | dict(plan.additions)
    for pricing_id in set(target) | set(source):
        expected = min(target.get(pricing_id, 0) + source.get(pricing_id, 0), 10)
        assert result[pricing_id] == expected
    # Every anonymous unit either moved or was reported.
    moved = {m.pricing_id: m.quantity for m in plan.moved}
    dropped = {d.pricing_id: d.quantity for d in plan.dropped}
    for pricing_id, quantity in source.items():
        assert moved.get(pricing_id, 0) + dropped.get(pricing_id, 0) == quantity


def test_summary_lists_lines_in_order_with_totals() -> None:
    current = Cart(
        cart_id="c",
        owner=OWNER,
        currency="EUR",
        lines=(Line("l2", "b", 1, 2), Line("l1", "a", 3, 1)),
    )
    out = summarize(current, {"a": info("a", 250), "b": info("b", 999, interval="month")})
    assert [line.pricing_id for line in out.lines] == ["a", "b"]
    assert [line.subtotal for line in out.lines] == [750, 999]
    assert (out.subtotal, out.total, out.item_count) == (1749, 1749, 4)
    assert out.currency == "EUR" and out.starts_subscription


def test_summary_flags_lines_that_cannot_be_bought_and_leaves_them_out_of_totals() -> None:
    current = cart(("a", 2), ("b", 1), ("gone", 1), ("usd", 1))
    out = summarize(
        current,
        {
            "a": info("a", 100),
            "b": info("b", 500, active=False, interval="year"),
            "usd": info("usd", 100, currency="USD"),
        },
    )
    assert [line.available for line in out.lines] == [True, False, False, False]
    assert (out.total, out.item_count, out.starts_subscription) == (200, 2, False)
    gone = out.lines[2]
    assert (gone.name, gone.unit_amount, gone.subtotal) == ("", 0, 0)


def test_no_cart_summarizes_as_an_empty_cart() -> None:
    out = summarize(None, {})
    assert (out.cart_id, out.currency, out.lines, out.total, out.item_count) == (
        None,
        None,
        [],
        0,
        0,
    )
