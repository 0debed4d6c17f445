"""The rules of operator refunds: never past what was paid; lines priced exactly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.payments.domain import (
    RefundExceedsOrdered,
    RefundExceedsPaid,
    RefundLineUnknown,
    line_share,
    plan_refund,
)

ORDER = [
    {"pricing_id": "mug", "quantity": 3, "total": 1000},
    {"pricing_id": "shipping", "quantity": 1, "total": 490},
]


def plan(**given_: object) -> int:
    values: dict[str, object] = {
        "paid": 1490,
        "refunded": 0,
        "amount": None,
        "lines": None,
        "order": ORDER,
        "refunded_lines": {},
    }
    values.update(given_)
    return plan_refund(**values)  # type: ignore[arg-type]


def test_without_amount_or_lines_all_that_is_left_goes_back() -> None:
    assert plan() == 1490
    assert plan(refunded=490) == 1000


def test_an_amount_past_what_is_left_is_refused_with_the_figures() -> None:
    with pytest.raises(RefundExceedsPaid) as refused:
        plan(refunded=1000, amount=491)
    assert refused.value.extra == {"paid": 1490, "refunded": 1000, "asked": 491}


def test_nothing_left_is_refused() -> None:
    with pytest.raises(RefundExceedsPaid):
        plan(refunded=1490)


def test_lines_are_priced_from_the_frozen_totals() -> None:
    assert plan(lines=[("mug", 1)]) == 333
    assert plan(lines=[("mug", 2)], refunded=333, refunded_lines={"mug": 1}) == 667
    assert plan(lines=[("shipping", 1), ("mug", 3)]) == 1490


def test_more_units_than_are_left_is_refused() -> None:
    with pytest.raises(RefundExceedsOrdered):
        plan(lines=[("mug", 2)], refunded=333, refunded_lines={"mug": 2})


def test_an_unknown_line_is_422() -> None:
    with pytest.raises(RefundLineUnknown):
        plan(lines=[("teapot", 1)])


@given(
    total=st.integers(min_value=0, max_value=10**9),
    pieces=st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=20),
)
def test_a_line_refunded_in_any_pieces_adds_up_to_its_total(total: int, pieces: list[int]) -> None:
    quantity = sum(pieces)
    refunded = 0
    parts = []
    for units in pieces:
        parts.append(line_share(total, quantity, refunded, units))
        refunded += units
    assert sum(parts) == total
    # No part is off its fair share by a whole minor unit or more.
    assert all(
        abs(part - total * units / quantity) < 1 for part, units in zip(parts, pieces, strict=True)
    )
