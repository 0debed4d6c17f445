"""Small builders for payments tests: settings, billing details, payments, provider events."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from libs.contracts.common import Owner, Principal
from libs.contracts.payments import PaymentLine, StartPaymentIn
from libs.runtime.runtime import Shared, shared_for
from libs.runtime.settings import DEV_SERVICE_TOKEN, RuntimeSettings
from services.payments.bootstrap import PaymentsDeps, build_deps
from services.payments.provider import PaymentProvider, ProviderEvent, ProviderSubscription
from services.payments.settings import PaymentsSettings
from tests.support.services import service_headers

SERVICE_TOKEN = DEV_SERVICE_TOKEN


@dataclass
class FakeClock:
    """A clock tests move by hand; with `tick`, each reading also moves it a little."""

    now: datetime = field(default_factory=lambda: datetime(2027, 3, 1, 12, tzinfo=UTC))
    tick: timedelta = timedelta(0)

    def __call__(self) -> datetime:
        self.now += self.tick
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def settings_for(
    tmp_path: Path | None = None, *, database_url: str | None = None, **values: Any
) -> PaymentsSettings:
    runtime = RuntimeSettings(data_dir=tmp_path or Path("/nonexistent"), outbox_poll_interval_ms=20)
    return PaymentsSettings(runtime=runtime, database_url=database_url, **values)


@asynccontextmanager
async def running_deps(
    settings: PaymentsSettings,
    *,
    shared: Shared | None = None,
    providers: dict[str, PaymentProvider] | None = None,
    clock: FakeClock | None = None,
) -> AsyncIterator[PaymentsDeps]:
    """The payments service's deps, migrated and started (no HTTP)."""
    extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
    deps = build_deps(
        settings, shared or shared_for(settings.runtime), providers=providers, **extra
    )
    await deps.runtime.start()
    try:
        yield deps
    finally:
        await deps.runtime.stop()
        for provider in deps.providers.values():
            await provider.aclose()


def rid(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def user(user_id: str | None = None, *orgs: str) -> Principal:
    return Principal(user_id=user_id or rid("u-"), orgs=list(orgs))


def anonymous(anonymous_id: str | None = None) -> Principal:
    return Principal(anonymous_id=anonymous_id or rid("a-"))


def headers(principal: Principal | None = None, *, token: bool = True) -> dict[str, str]:
    return service_headers(principal, token=SERVICE_TOKEN, credential=token)


def billing(country: str = "DE", **overrides: Any) -> dict[str, Any]:
    address = {
        "line1": "Hauptstraße 1",
        "city": "Berlin",
        "postal_code": "10115",
        "country": country,
        **overrides.pop("address", {}),
    }
    return {"name": "Ada Lovelace", "email": "ada@example.com", "address": address, **overrides}


def lines(
    *, recurring: bool = False, unit_amount: int = 1250, quantity: int = 2
) -> list[PaymentLine]:
    return [
        PaymentLine(
            pricing_id=rid("price-"),
            name="Coffee subscription" if recurring else "Mug",
            unit_amount=unit_amount,
            quantity=quantity,
            interval="month" if recurring else None,
        )
    ]


def start_payment(
    *,
    owner: Owner,
    customer_id: str,
    order_id: str | None = None,
    recurring: bool = False,
    currency: str = "EUR",
    unit_amount: int = 1250,
    quantity: int = 2,
    new_attempt: bool = False,
    **overrides: Any,
) -> StartPaymentIn:
    payment_lines = overrides.pop(
        "lines", lines(recurring=recurring, unit_amount=unit_amount, quantity=quantity)
    )
    values: dict[str, Any] = {
        "order_id": order_id or str(uuid.uuid4()),
        "order_number": f"2027-{uuid.uuid4().int % 1_000_000:06d}",
        "owner": owner,
        "customer_id": customer_id,
        "amount": sum(line.unit_amount * line.quantity for line in payment_lines),
        "currency": currency,
        "lines": payment_lines,
        "statement_descriptor": "Store Mugs",
        "success_url": "https://shop.example/thanks?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://shop.example/cart",
        "new_attempt": new_attempt,
        **overrides,
    }
    return StartPaymentIn(**values)


def provider_event(kind: str, *, provider: str = "dev", **values: Any) -> ProviderEvent:
    subscription = values.pop("subscription", None)
    if isinstance(subscription, str):
        subscription = ProviderSubscription(id=subscription)
    defaults: dict[str, Any] = {
        "provider": provider,
        "id": rid("evt_"),
        "type": f"test.{kind}",
        "kind": kind,
        "created": datetime.now(UTC),
        "subscription": subscription,
    }
    return ProviderEvent(**{**defaults, **values})


async def published(deps: PaymentsDeps, event_type: str | None = None) -> list[dict[str, Any]]:
    """Payloads of the events the service wrote to its outbox, oldest first."""
    outbox = deps.runtime.outbox
    query = select(outbox.c.type, outbox.c.envelope).order_by(outbox.c.id)
    async with deps.runtime.sessions() as session:
        rows = (await session.execute(query)).all()
    found = []
    for row_type, envelope in rows:
        if event_type is None or row_type == event_type:
            body = json.loads(envelope) if isinstance(envelope, str) else envelope
            found.append(body["payload"])
    return found


SUCCEEDED = "payments.payment.succeeded.v1"
FAILED = "payments.payment.failed.v1"
EXPIRED = "payments.payment.expired.v1"
REFUNDED = "payments.payment.refunded.v1"
REFUND_SUCCEEDED = "payments.refund.succeeded.v1"
REFUND_FAILED = "payments.refund.failed.v1"
FLAGGED = "payments.payment.flagged.v1"
ACTIVATED = "payments.subscription.activated.v1"
RENEWED = "payments.subscription.renewed.v1"
CANCELED = "payments.subscription.canceled.v1"
CUSTOMER_CREATED = "payments.customer.created.v1"
CUSTOMER_CHANGED = "payments.customer.changed.v1"
