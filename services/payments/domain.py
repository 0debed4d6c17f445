"""Payments rules without I/O: billing validation, VAT ids, the attempt state machine, periods."""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, Literal

import pycountry

from libs.contracts.common import FieldError
from libs.contracts.payments import Address, AttemptStatus, BillingDetails, PaymentLine
from libs.runtime.problems import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ProblemError,
    ServiceUnavailable,
    Unauthorized,
)

# --- errors ----------------------------------------------------------------------------------


class CustomerNotFound(NotFound):
    code, title = "customer_not_found", "Customer not found"


class NoDefaultCustomer(NotFound):
    code, title = "no_default_customer", "No default customer"


class NotAMember(Forbidden):
    code, title = "not_a_member", "Not a member of this organization"


class IdentityRequired(Unauthorized):
    code, title = "identity_required", "A user or an anonymous shopper is required"


class PaymentNotFound(NotFound):
    code, title = "payment_not_found", "Payment attempt not found"


class SubscriptionNotFound(NotFound):
    code, title = "subscription_not_found", "Subscription not found"


class OrderAlreadyPaid(Conflict):
    code, title = "order_already_paid", "The order is already paid"


class OrderCanceled(Conflict):
    code, title = "order_canceled", "This order is canceled"


class PaymentProcessing(Conflict):
    code, title = "payment_processing", "A payment for this order is still processing"


class CheckoutClosed(Conflict):
    code, title = "checkout_closed", "This checkout is no longer open"


class DevCheckoutUnavailable(NotFound):
    code, title = "dev_checkout_unavailable", "The dev payment provider is not in use"


class WebhooksNotConfigured(NotFound):
    code, title = "webhooks_not_configured", "Stripe webhooks are not configured"


class InvalidSignature(ProblemError):
    status, code, title = 400, "invalid_signature", "The webhook signature is not valid"


class InvalidWebhookPayload(ProblemError):
    status, code, title = 400, "invalid_payload", "The webhook payload is not valid"


class UnsupportedApiVersion(ProblemError):
    """A signed event rendered at another API version than the pinned one: refused (not 2xx),
    so Stripe keeps it and retries it once the endpoint's version is fixed."""

    status, code, title = 400, "unsupported_api_version", "The event's API version is not ours"


class PaymentRejected(InvalidInput):
    code, title = "payment_rejected", "The payment provider refused the payment"


class ProviderUnavailable(ServiceUnavailable):
    code, title = "provider_unavailable", "The payment provider is unavailable"


# --- billing details -------------------------------------------------------------------------

# EU member states: their VAT ids carry the country's prefix (Greece uses EL, not GR).
EU_COUNTRIES: Final[frozenset[str]] = frozenset(
    {
        "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
        "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
    }
)  # fmt: skip
VAT_PREFIXES: Final[dict[str, tuple[str, ...]]] = {
    **{country: (country,) for country in EU_COUNTRIES},
    "GR": ("EL", "GR"),
    # Northern Ireland traders use XI for goods, GB otherwise.
    "GB": ("GB", "XI"),
}
_VAT_SEPARATORS = re.compile(r"[\s.\-/]")
_VAT_BODY = re.compile(r"^[A-Z0-9]{2,13}$")
_VAT_OTHER = re.compile(r"^[A-Z0-9]{2,20}$")


def normalize_country(code: str) -> str | None:
    """The upper-case ISO 3166-1 alpha-2 code, or None when it is not one."""
    candidate = code.strip().upper()
    if len(candidate) != 2 or pycountry.countries.get(alpha_2=candidate) is None:
        return None
    return candidate


def normalize_vat_id(vat_id: str, country: str) -> tuple[str | None, str | None]:
    """(normalized VAT id, None) or (None, why it is invalid) for a customer in `country`.

    EU countries and GB: the country's prefix (EL for Greece, GB or XI for the UK) and 2-13
    letters or digits. Elsewhere formats vary too much (CHE-123.456.789 MWST, 123456789MVA),
    so 2-20 letters or digits. Spaces, dots, dashes and slashes are dropped; no checksums.
    """
    compact = _VAT_SEPARATORS.sub("", vat_id).upper()
    if not compact:
        return None, None
    prefixes = VAT_PREFIXES.get(country)
    if prefixes is None:
        if not _VAT_OTHER.match(compact):
            return None, "a VAT id has 2 to 20 letters or digits"
        return compact, None
    prefix = next((p for p in prefixes if compact.startswith(p)), None)
    if prefix is None:
        expected = " or ".join(prefixes)
        return None, f"a VAT id for {country} starts with {expected}"
    if not _VAT_BODY.match(compact[len(prefix) :]):
        return None, f"a VAT id for {country} is {prefix} followed by 2 to 13 letters or digits"
    return compact, None


def validate_billing(details: BillingDetails) -> BillingDetails:
    """Check and normalize billing details; raise a 422 naming every bad field."""
    errors: list[tuple[FieldError, str]] = []

    def bad(field: str, message: str, code: str) -> None:
        errors.append((FieldError(field=field, message=message), code))

    def required(field: str, value: str) -> str:
        cleaned = " ".join(value.split())
        if not cleaned:
            bad(field, "must not be blank", "blank_field")
        return cleaned

    def optional(value: str | None) -> str | None:
        cleaned = " ".join(value.split()) if value is not None else ""
        return cleaned or None

    name = required("name", details.name)
    line1 = required("address.line1", details.address.line1)
    city = required("address.city", details.address.city)
    postal_code = required("address.postal_code", details.address.postal_code)
    country = normalize_country(details.address.country)
    if country is None:
        bad(
            "address.country",
            f"unknown country {details.address.country!r}: use an ISO 3166-1 alpha-2 code",
            "unknown_country",
        )
    vat_id = None
    if details.vat_id is not None and country is not None:
        vat_id, problem = normalize_vat_id(details.vat_id, country)
        if problem:
            bad("vat_id", problem, "invalid_vat_id")
    if errors:
        if len(errors) == 1:
            field_error, code = errors[0]
            raise InvalidInput.for_field(field_error.field, field_error.message, code=code)
        raise InvalidInput(
            "; ".join(f"{e.field}: {e.message}" for e, _ in errors),
            errors=[e for e, _ in errors],
        )
    assert country is not None
    return BillingDetails(
        name=name,
        email=str(details.email).strip(),
        address=Address(
            line1=line1,
            line2=optional(details.address.line2),
            city=city,
            postal_code=postal_code,
            state=optional(details.address.state),
            country=country,
        ),
        vat_id=vat_id,
    )


# --- payment attempts ------------------------------------------------------------------------

UNPAID: Final = "unpaid"
PROCESSING: Final = "processing"
TERMINAL: Final[frozenset[str]] = frozenset({"paid", "failed", "expired", "canceled"})
CheckoutMode = Literal["payment", "subscription"]

# Where each state may be reached from. A completed checkout whose money is still on its way (a
# delayed method: SEPA Debit, bank transfer) is `processing`: it settles, paid or failed, and is
# never replaced, expired or abandoned, since the debit it started cannot be called back (pay
# again is refused; replacing and paying cancel unpaid attempts only). It is canceled only when
# its money arrives for an order another attempt paid, and is refunded.
MOVES_FROM: Final[dict[str, tuple[str, ...]]] = {
    PROCESSING: (UNPAID,),
    "paid": (UNPAID, PROCESSING),
    "failed": (UNPAID, PROCESSING),
    "expired": (UNPAID,),
    "canceled": (UNPAID, PROCESSING),
}


def can_transition(current: str, target: AttemptStatus) -> bool:
    """unpaid -> processing | paid | failed | expired | canceled; processing -> paid | failed
    (or canceled, refunded); nothing ever leaves a terminal state."""
    return current in MOVES_FROM.get(target, ())


def checkout_mode(lines: Sequence[PaymentLine]) -> CheckoutMode:
    """`subscription` when any line recurs, else `payment`."""
    return "subscription" if any(line.interval for line in lines) else "payment"


def billing_cycle(lines: Sequence[PaymentLine]) -> tuple[str, int] | None:
    """The one (interval, count) of the recurring lines; None for a one-off payment."""
    cycles = {(line.interval, line.interval_count) for line in lines if line.interval}
    if len(cycles) > 1:
        raise InvalidInput.for_field(
            "lines", "all recurring lines must share one billing interval", code="mixed_intervals"
        )
    if not cycles:
        return None
    interval, count = cycles.pop()
    assert interval is not None
    return interval, count


def line_amount(line: PaymentLine) -> int:
    """What one line charges."""
    return line.total if line.total is not None else line.unit_amount * line.quantity


def lines_total(lines: Sequence[PaymentLine]) -> int:
    return sum(line_amount(line) for line in lines)


def recurring_total(lines: Sequence[PaymentLine]) -> int:
    """What each renewal charges: the recurring lines only (one-offs are billed once)."""
    return sum(line_amount(line) for line in lines if line.interval)


def charge_lines(
    lines: Sequence[PaymentLine], amount: int, mode: CheckoutMode
) -> tuple[PaymentLine, ...]:
    """The lines the provider charges, adding up to exactly `amount`.

    A line whose `total` differs from unit * quantity (exclusive tax) is charged as one item of
    its total. When no line carries a total, a one-off payment may get the rest as one "Tax"
    line; a subscription cannot (renewals must charge each line's tax), so it must give totals.
    """
    charged: list[PaymentLine] = []
    for line in lines:
        if line.total is not None and line.total != line.unit_amount * line.quantity:
            name = line.name if line.quantity == 1 else f"{line.name} x {line.quantity}"
            charged.append(
                line.model_copy(update={"name": name, "unit_amount": line.total, "quantity": 1})
            )
        else:
            charged.append(line.model_copy(update={"total": None}))
    rest = amount - lines_total(charged)
    if rest > 0 and mode == "payment" and all(line.total is None for line in lines):
        charged.append(PaymentLine(pricing_id="tax", name="Tax", unit_amount=rest, quantity=1))
        rest = 0
    if rest != 0:
        raise InvalidInput.for_field(
            "amount",
            f"the lines charge {lines_total(charged)} but the amount is {amount}; give each "
            "line's `total` with its tax",
            code="amount_mismatch",
        )
    return tuple(charged)


def add_interval(moment: datetime, interval: str, count: int) -> datetime:
    """The end of a billing period: calendar months and years, clamped to the month's end."""
    if interval == "day":
        return moment + timedelta(days=count)
    if interval == "week":
        return moment + timedelta(weeks=count)
    months = count * (12 if interval == "year" else 1)
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


# --- operator refunds ------------------------------------------------------------------------


class OrderNotPaid(Conflict):
    code, title = "order_not_paid", "The order is not paid"


class RefundExceedsPaid(Conflict):
    code, title = "refund_exceeds_paid", "The refunds would exceed what was paid"


class RefundExceedsOrdered(Conflict):
    code, title = "refund_exceeds_ordered", "The refund names more than the order has left"


class RefundLineUnknown(InvalidInput):
    code, title = "refund_line_unknown", "The order has no such line"


class RefundKeyReused(InvalidInput):
    code, title = "idempotency_key_reused", "This idempotency key was used for another refund"


def order_lines(lines: Sequence[PaymentLine]) -> list[dict[str, int | str]]:
    """The order's lines as an attempt keeps them for refunds: what each costs, tax included."""
    return [
        {"pricing_id": line.pricing_id, "quantity": line.quantity, "total": line_amount(line)}
        for line in lines
    ]


def line_share(total: int, quantity: int, refunded: int, asked: int) -> int:
    """What `asked` more units of a line cost once `refunded` units were refunded.

    The k-th unit boundary sits at ⌊total·k / quantity⌋: each refund is the difference between
    two boundaries, so the parts of a line refunded in any order and any pieces add up to its
    total exactly, and a part never exceeds its fair share by a minor unit or more."""
    return total * (refunded + asked) // quantity - total * refunded // quantity


def plan_refund(
    *,
    paid: int,
    refunded: int,
    amount: int | None,
    lines: Sequence[tuple[str, int]] | None,
    order: Sequence[Mapping[str, Any]],
    refunded_lines: Mapping[str, int],
) -> int:
    """The amount an operator's refund sends back, or the error that refuses it.

    `paid` is what the paid attempt charged and `refunded` the sum of its refunds still going
    or gone back (pending and succeeded); the sum never exceeds `paid`. Without an amount or
    lines: all that is left. Lines are priced from the order's frozen line totals (tax included)
    with `line_share`; `refunded_lines` holds the quantities of each line already refunded."""
    if lines:
        priced: dict[str, tuple[int, int]] = {}
        for entry in order:
            pricing_id = str(entry["pricing_id"])
            total, quantity = priced.get(pricing_id, (0, 0))
            priced[pricing_id] = (total + int(entry["total"]), quantity + int(entry["quantity"]))
        asked_units: dict[str, int] = {}
        for pricing_id, quantity in lines:
            if pricing_id not in priced:
                raise RefundLineUnknown.for_field(
                    "lines", f"the order has no line {pricing_id!r}", code="refund_line_unknown"
                )
            asked_units[pricing_id] = asked_units.get(pricing_id, 0) + quantity
        asked = 0
        for pricing_id, units in asked_units.items():
            total, quantity = priced[pricing_id]
            already = refunded_lines.get(pricing_id, 0)
            if already + units > quantity:
                raise RefundExceedsOrdered(
                    f"Line {pricing_id!r}: {quantity} ordered, {already} refunded, {units} asked.",
                    extra={"pricing_id": pricing_id, "ordered": quantity,
                           "refunded": already, "asked": units},
                )  # fmt: skip
            asked += line_share(total, quantity, already, units)
    else:
        asked = amount if amount is not None else paid - refunded
    if asked <= 0 or refunded + asked > paid:
        raise RefundExceedsPaid(
            f"Paid {paid}, refunded {refunded}, asked {asked}: refunds never exceed what was "
            f"paid ({max(paid - refunded, 0)} left).",
            extra={"paid": paid, "refunded": refunded, "asked": asked},
        )
    return asked
