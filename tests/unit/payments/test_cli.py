"""`store payments refunds` and `store payments reconcile` on the service's own database."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app as store_cli
from libs.contracts.payments import CreateBillingIn
from tests.unit.payments.builders import (
    billing,
    provider_event,
    running_deps,
    settings_for,
    start_payment,
    user,
)


async def refunded_payment(tmp_path: Path) -> str:
    """A payment that came after its attempt failed: refunded; its attempt id."""
    async with running_deps(settings_for(tmp_path)) as deps:
        shopper = user()
        customer = await deps.customers.create_billing(
            principal=shopper, data=CreateBillingIn.model_validate(billing())
        )
        data = start_payment(owner=shopper.owner, customer_id=customer.id)  # type: ignore[arg-type]
        payment, _ = await deps.payments.start_payment(data=data)
        await deps.payments.handle_provider_event(
            provider_event("payment_failed", attempt_id=payment.attempt_id, reason="declined")
        )
        await deps.payments.handle_provider_event(
            provider_event("payment_succeeded", attempt_id=payment.attempt_id, paid=True)
        )
    return payment.attempt_id


def test_refunds_are_listed_and_reconcile_reports_its_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempt_id = asyncio.run(refunded_payment(tmp_path))
    # The command reads the same settings as the service: the environment.
    monkeypatch.setenv("STORE_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    listed = runner.invoke(store_cli, ["payments", "refunds", "--status", "succeeded"])
    assert listed.exit_code == 0, listed.output
    [refund] = [json.loads(line) for line in listed.output.splitlines()]
    assert (refund["attempt_id"], refund["reason"]) == (attempt_id, "paid_after_failed")
    pending = runner.invoke(store_cli, ["payments", "refunds", "--status", "pending"])
    assert pending.exit_code == 0 and pending.output == ""
    refused = runner.invoke(store_cli, ["payments", "refunds", "--status", "lost"])
    assert refused.exit_code != 0
    ran = runner.invoke(store_cli, ["payments", "reconcile"])
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.output) == {
        "checked": 0,
        "settled": 0,
        "refunds_retried": 0,
        "errors": 0,
        "subscriptions_checked": 0,
        "renewals_recorded": 0,
    }
