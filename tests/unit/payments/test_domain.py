"""Payments rules: billing validation, VAT ids, the attempt state machine, charged lines."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from libs.contracts.payments import BillingDetails, PaymentLine
from libs.runtime.problems import InvalidInput
from services.payments.domain import (
    TERMINAL,
    add_interval,
    billing_cycle,
    can_transition,
    charge_lines,
    checkout_mode,
    normalize_vat_id,
    recurring_total,
    validate_billing,
)


def details(**overrides: Any) -> BillingDetails:
    address = {
        "line1": "Hauptstraße 1",
        "city": "Berlin",
        "postal_code": "10115",
        "country": "DE",
        **overrides.pop("address", {}),
    }
    return BillingDetails.model_validate(
        {"name": "Ada Lovelace", "email": "ada@example.com", "address": address, **overrides}
    )


def fields_of(error: InvalidInput) -> list[str]:
    return [e.field for e in error.errors or []]


def test_valid_details_are_normalized() -> None:
    cleaned = validate_billing(
        details(
            name="  Ada   Lovelace ",
            address={"country": "de", "line2": "   ", "state": " Berlin "},
            vat_id="de 123.456-789",
        )
    )
    assert cleaned.name == "Ada Lovelace"
    assert cleaned.address.country == "DE"
    assert cleaned.address.line2 is None and cleaned.address.state == "Berlin"
    assert cleaned.vat_id == "DE123456789"


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"name": "   "}, "name", "blank_field"),
        ({"address": {"line1": " "}}, "address.line1", "blank_field"),
        ({"address": {"city": "\t"}}, "address.city", "blank_field"),
        ({"address": {"postal_code": "  "}}, "address.postal_code", "blank_field"),
        ({"address": {"country": "XX"}}, "address.country", "unknown_country"),
        ({"address": {"country": "ZZ"}}, "address.country", "unknown_country"),
        ({"vat_id": "FR12345678901"}, "vat_id", "invalid_vat_id"),
        ({"vat_id": "DE1"}, "vat_id", "invalid_vat_id"),
        ({"vat_id": "DE12345678901234"}, "vat_id", "invalid_vat_id"),
        ({"vat_id": "DE12345#789"}, "vat_id", "invalid_vat_id"),
    ],
)
def test_each_bad_field_is_named(overrides: dict[str, Any], field: str, code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_billing(details(**overrides))
    assert caught.value.status == 422
    assert caught.value.code == code
    assert fields_of(caught.value) == [field]


def test_several_bad_fields_are_all_named() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_billing(details(name=" ", address={"country": "QQ", "city": " "}))
    assert sorted(fields_of(caught.value)) == ["address.city", "address.country", "name"]


@pytest.mark.parametrize(
    ("vat_id", "country", "expected"),
    [
        ("DE123456789", "DE", "DE123456789"),
        ("EL123456789", "GR", "EL123456789"),
        ("GB123456789", "GB", "GB123456789"),
        ("XI123456789", "GB", "XI123456789"),
        ("ATU12345678", "AT", "ATU12345678"),
        ("nl 8525.76.449.B01", "NL", "NL852576449B01"),
        ("CHE-123.456.789", "CH", "CHE123456789"),  # outside the EU: 2-20 alphanumerics
        ("123456789MVA", "NO", "123456789MVA"),
    ],
)
def test_vat_ids_accepted(vat_id: str, country: str, expected: str) -> None:
    assert normalize_vat_id(vat_id, country) == (expected, None)


@pytest.mark.parametrize(
    ("vat_id", "country"),
    [
        ("GR123456789", "DE"),  # another EU country's prefix
        ("123456789", "FR"),  # no prefix
        ("DE1234567890123456", "DE"),  # too long
        ("US12_34", "US"),
        ("A", "US"),
    ],
)
def test_vat_ids_refused(vat_id: str, country: str) -> None:
    normalized, problem = normalize_vat_id(vat_id, country)
    assert normalized is None and problem


def test_attempts_leave_unpaid_once_and_never_a_terminal_state() -> None:
    for target in ("processing", "paid", "failed", "expired", "canceled"):
        assert can_transition("unpaid", target)
    for current in TERMINAL:
        for target in ("processing", "paid", "failed", "expired", "canceled"):
            assert not can_transition(current, target)  # type: ignore[arg-type]


def test_a_processing_attempt_settles_and_never_expires() -> None:
    assert can_transition("processing", "paid") and can_transition("processing", "failed")
    for target in ("processing", "expired", "unpaid"):
        assert not can_transition("processing", target)  # type: ignore[arg-type]


def line(**overrides: Any) -> PaymentLine:
    return PaymentLine.model_validate(
        {"pricing_id": "p1", "name": "Mug", "unit_amount": 1000, "quantity": 2, **overrides}
    )


def test_mode_is_subscription_when_any_line_recurs() -> None:
    assert checkout_mode([line()]) == "payment"
    assert checkout_mode([line(), line(interval="month")]) == "subscription"
    assert billing_cycle([line(interval="year", interval_count=2)]) == ("year", 2)
    assert billing_cycle([line()]) is None


def test_recurring_lines_must_share_one_interval() -> None:
    with pytest.raises(InvalidInput) as caught:
        billing_cycle([line(interval="month"), line(interval="year")])
    assert caught.value.code == "mixed_intervals"


def test_lines_must_add_up_to_the_amount() -> None:
    assert [c.unit_amount for c in charge_lines([line()], 2000, "payment")] == [1000]
    with pytest.raises(InvalidInput) as caught:
        charge_lines([line()], 1999, "payment")
    assert caught.value.code == "amount_mismatch" and fields_of(caught.value) == ["amount"]


def test_a_line_total_with_exclusive_tax_is_charged_as_one_item() -> None:
    charged = charge_lines([line(total=2190, interval="month")], 2190, "subscription")
    assert [(c.name, c.unit_amount, c.quantity) for c in charged] == [("Mug x 2", 2190, 1)]
    assert recurring_total(charged) == 2190


def test_a_one_off_payment_without_line_totals_gets_the_tax_as_a_line() -> None:
    charged = charge_lines([line()], 2380, "payment")
    assert [(c.name, c.unit_amount * c.quantity) for c in charged] == [
        ("Mug", 2000),
        ("Tax", 380),
    ]
    # A subscription must say each line's tax: renewals charge it again.
    with pytest.raises(InvalidInput):
        charge_lines([line(interval="month")], 2380, "subscription")


def test_periods_follow_the_calendar() -> None:
    jan31 = datetime(2027, 1, 31, 12, tzinfo=UTC)
    assert add_interval(jan31, "month", 1) == datetime(2027, 2, 28, 12, tzinfo=UTC)
    assert add_interval(jan31, "year", 1) == datetime(2028, 1, 31, 12, tzinfo=UTC)
    assert add_interval(jan31, "week", 2) == datetime(2027, 2, 14, 12, tzinfo=UTC)
    assert add_interval(jan31, "day", 3) == datetime(2027, 2, 3, 12, tzinfo=UTC)
    assert add_interval(jan31, "month", 13) == datetime(2028, 2, 29, 12, tzinfo=UTC)
