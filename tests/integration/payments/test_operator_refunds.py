"""Operator and Dashboard refunds on real PostgreSQL: concurrent requests never refund more
than was paid, a retried key is one refund, a Dashboard refund is recorded once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from libs.contracts.payments import CreateBillingIn, OperatorRefundIn, PaymentLine
from libs.runtime.problems import ProblemError
from services.payments.bootstrap import PaymentsDeps
from services.payments.provider import ProviderRefund
from tests.unit.payments.builders import (
    REFUND_SUCCEEDED,
    billing,
    provider_event,
    published,
    running_deps,
    settings_for,
    start_payment,
    user,
)

pytestmark = pytest.mark.integration

PRICING_ID = "price-mug-eur"


@pytest.fixture
async def deps(tmp_path: Path, pg_database_url: str) -> AsyncIterator[PaymentsDeps]:
    async with running_deps(settings_for(tmp_path, database_url=pg_database_url)) as ready:
        yield ready


async def paid_order(deps: PaymentsDeps, reference: str | None = None) -> tuple[str, int]:
    """A paid order of 2 x 12.50 EUR: its id and what it charged."""
    shopper = user()
    customer = await deps.customers.create_billing(
        principal=shopper, data=CreateBillingIn.model_validate(billing())
    )
    data = start_payment(
        owner=shopper.owner,  # type: ignore[arg-type]
        customer_id=customer.id,
        lines=[PaymentLine(pricing_id=PRICING_ID, name="Mug", unit_amount=1250, quantity=2)],
    )
    payment, _ = await deps.payments.start_payment(data=data)
    await deps.payments.handle_provider_event(
        provider_event(
            "checkout_completed",
            attempt_id=payment.attempt_id,
            paid=True,
            provider_reference=reference or f"pi_{uuid.uuid4().hex}",
        )
    )
    return data.order_id, data.amount


def ask(amount: int | None = None, key: str | None = None, **values: object) -> OperatorRefundIn:
    return OperatorRefundIn.model_validate(
        {
            "amount": amount,
            "reason": "goodwill",
            "idempotency_key": key or str(uuid.uuid4()),
            "actor": "operator-1",
            **values,
        }
    )


async def test_concurrent_partial_refunds_never_exceed_what_was_paid(deps: PaymentsDeps) -> None:
    order_id, paid = await paid_order(deps)
    part = 300  # 8 of them fit into 2500, the other 12 must be refused
    results = await asyncio.gather(
        *(
            deps.payments.operator_refunds.refund_order(order_id=order_id, data=ask(part))
            for _ in range(20)
        ),
        return_exceptions=True,
    )
    made = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, ProblemError)]
    assert len(made) + len(refused) == 20, [r for r in results if isinstance(r, BaseException)]
    assert {r.code for r in refused} == {"refund_exceeds_paid"}
    assert len(made) == paid // part
    refunds = [r for r in await deps.payments.list_refunds(limit=1000) if r.order_id == order_id]
    assert sum(r.amount for r in refunds if r.status in ("pending", "succeeded")) <= paid
    assert len(await published(deps, REFUND_SUCCEEDED)) == len(made)


async def test_the_rest_then_nothing(deps: PaymentsDeps) -> None:
    order_id, paid = await paid_order(deps)
    first, _ = await deps.payments.operator_refunds.refund_order(order_id=order_id, data=ask(1000))
    rest, _ = await deps.payments.operator_refunds.refund_order(order_id=order_id, data=ask())
    assert (first.amount, rest.amount) == (1000, paid - 1000)
    assert (rest.reason, rest.actor, rest.note, rest.status) == (
        "operator",
        "operator-1",
        "goodwill",
        "succeeded",
    )
    with pytest.raises(ProblemError) as refused:
        await deps.payments.operator_refunds.refund_order(order_id=order_id, data=ask(1))
    assert refused.value.code == "refund_exceeds_paid"
    assert refused.value.extra == {"paid": paid, "refunded": paid, "asked": 1}


async def test_a_retried_key_is_the_same_refund_and_another_body_is_refused(
    deps: PaymentsDeps,
) -> None:
    order_id, _ = await paid_order(deps)
    key = str(uuid.uuid4())
    results = await asyncio.gather(
        *(
            deps.payments.operator_refunds.refund_order(order_id=order_id, data=ask(500, key))
            for _ in range(5)
        )
    )
    assert len({refund.id for refund, _ in results}) == 1
    assert [created for _, created in results].count(True) == 1
    with pytest.raises(ProblemError) as reused:
        await deps.payments.operator_refunds.refund_order(order_id=order_id, data=ask(600, key))
    assert reused.value.code == "idempotency_key_reused"
    assert len(await published(deps, REFUND_SUCCEEDED)) == 1


async def test_an_unpaid_order_is_refused(deps: PaymentsDeps) -> None:
    with pytest.raises(ProblemError) as refused:
        await deps.payments.operator_refunds.refund_order(order_id=str(uuid.uuid4()), data=ask())
    assert refused.value.code == "order_not_paid"


async def test_a_dashboard_refund_is_recorded_once_and_counts(deps: PaymentsDeps) -> None:
    reference = f"pi_{uuid.uuid4().hex}"
    order_id, paid = await paid_order(deps, reference)
    refund = ProviderRefund(
        id=f"re_{uuid.uuid4().hex}",
        status="succeeded",
        amount=700,
        currency="EUR",
        payment_reference=reference,
    )
    # Stripe sends refund.created and may send it again, or a refund.updated, concurrently.
    await asyncio.gather(
        *(
            deps.payments.handle_provider_event(provider_event("refund_updated", refund=refund))
            for _ in range(4)
        )
    )
    found = [r for r in await deps.payments.list_refunds(limit=1000) if r.order_id == order_id]
    assert [(r.reason, r.amount, r.status) for r in found] == [
        ("provider_dashboard", 700, "succeeded")
    ]
    announced = [e for e in await published(deps, REFUND_SUCCEEDED) if e["order_id"] == order_id]
    assert [(e["reason"], e["amount"]) for e in announced] == [("provider_dashboard", 700)]
    with pytest.raises(ProblemError) as refused:
        await deps.payments.operator_refunds.refund_order(order_id=order_id, data=ask(paid))
    assert refused.value.extra == {"paid": paid, "refunded": 700, "asked": paid}


async def test_lines_are_refunded_at_their_frozen_price_and_never_past_their_quantity(
    deps: PaymentsDeps,
) -> None:
    order_id, _ = await paid_order(deps)  # one line: 2 x 12.50
    one, _ = await deps.payments.operator_refunds.refund_order(
        order_id=order_id, data=ask(lines=[{"pricing_id": PRICING_ID, "quantity": 1}])
    )
    assert (one.amount, [(x.pricing_id, x.quantity) for x in one.lines or []]) == (
        1250,
        [(PRICING_ID, 1)],
    )
    with pytest.raises(ProblemError) as refused:
        await deps.payments.operator_refunds.refund_order(
            order_id=order_id, data=ask(lines=[{"pricing_id": PRICING_ID, "quantity": 2}])
        )
    assert refused.value.code == "refund_exceeds_ordered"
    with pytest.raises(ProblemError) as unknown:
        await deps.payments.operator_refunds.refund_order(
            order_id=order_id, data=ask(lines=[{"pricing_id": "teapot", "quantity": 1}])
        )
    assert unknown.value.code == "refund_line_unknown"
