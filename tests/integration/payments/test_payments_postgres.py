"""The payments service on real PostgreSQL (migrated from empty) and RabbitMQ: the races that
SQLite's single writer hides."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import select, text

from libs.contracts.common import Principal
from libs.contracts.envelope import Envelope
from libs.contracts.events import AnonymousMerged
from libs.contracts.payments import CreateBillingIn
from libs.runtime.migrations import upgrade
from libs.runtime.runtime import shared_for
from libs.runtime.settings import RuntimeSettings
from services.payments.bootstrap import PaymentsDeps, build_deps
from services.payments.dev_provider import DevProvider
from services.payments.provider import PaymentProvider, ProviderEvent
from services.payments.settings import PaymentsSettings
from tests.conftest import BusNames
from tests.support.services import TEST_SERVICE_TOKEN
from tests.unit.payments.builders import (
    CUSTOMER_CHANGED,
    SUCCEEDED,
    anonymous,
    billing,
    provider_event,
    published,
    running_deps,
    settings_for,
    start_payment,
    user,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def deps(tmp_path: Path, pg_database_url: str) -> AsyncIterator[PaymentsDeps]:
    # A memory bus with a PostgreSQL database: the service migrates it on start.
    async with running_deps(settings_for(tmp_path, database_url=pg_database_url)) as ready:
        yield ready


async def add_customer(deps: PaymentsDeps, principal: Principal, **overrides: Any) -> str:
    created = await deps.customers.create_billing(
        principal=principal, data=CreateBillingIn.model_validate(billing(**overrides))
    )
    return created.id


async def test_migrations_build_the_schema_on_a_fresh_database(deps: PaymentsDeps) -> None:
    async with deps.runtime.engine.connect() as connection:
        version = (await connection.execute(text("SELECT version_num FROM alembic_version"))).all()
        indexes: dict[str, str] = dict(
            (
                await connection.execute(
                    text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
                )
            ).all()
        )
    assert len(version) == 1
    assert "WHERE is_default" in indexes["uq_customers_default_per_owner"]
    assert "WHERE ((status)::text = 'paid'::text)" in indexes["uq_payment_attempts_paid_per_order"]


async def test_racing_first_customers_make_exactly_one_default(deps: PaymentsDeps) -> None:
    for _ in range(3):
        shopper = user()
        await asyncio.gather(*(add_customer(deps, shopper, name=f"N{i}") for i in range(8)))
        found = await deps.customers.get_customers_for_user(principal=shopper)
        assert len(found) == 8
        assert [c.is_default for c in found].count(True) == 1


async def test_racing_default_changes_and_deletes_keep_one_default(deps: PaymentsDeps) -> None:
    shopper = user()
    ids = [await add_customer(deps, shopper, name=f"N{i}") for i in range(5)]
    results = await asyncio.gather(
        *(deps.customers.set_default_customer(principal=shopper, customer_id=i) for i in ids[1:]),
        deps.customers.delete_customer(principal=shopper, customer_id=ids[0]),
        deps.customers.delete_customer(principal=shopper, customer_id=ids[1]),
        return_exceptions=True,
    )
    assert all(not isinstance(r, Exception) or getattr(r, "status", 0) == 404 for r in results)
    found = await deps.customers.get_customers_for_user(principal=shopper)
    assert [c.id for c in found] == ids[2:]
    assert [c.is_default for c in found].count(True) == 1


async def test_a_webhook_delivered_concurrently_applies_once(deps: PaymentsDeps) -> None:
    shopper = user()
    data = start_payment(owner=shopper.owner, customer_id=await add_customer(deps, shopper))  # type: ignore[arg-type]
    payment, _ = await deps.payments.start_payment(data=data)
    event = provider_event("checkout_completed", attempt_id=payment.attempt_id, paid=True)
    applied = await asyncio.gather(*(deps.payments.handle_provider_event(event) for _ in range(6)))
    assert applied.count(True) == 1
    assert (await deps.payments.get_payment(attempt_id=payment.attempt_id)).status == "paid"
    assert len(await published(deps, SUCCEEDED)) == 1


async def test_two_attempts_paid_at_once_pay_the_order_once(deps: PaymentsDeps) -> None:
    shopper = user()
    data = start_payment(owner=shopper.owner, customer_id=await add_customer(deps, shopper))  # type: ignore[arg-type]
    first, _ = await deps.payments.start_payment(data=data)
    second, _ = await deps.payments.start_payment(
        data=data.model_copy(update={"new_attempt": True})
    )
    await asyncio.gather(
        *(
            deps.payments.handle_provider_event(
                provider_event("checkout_completed", attempt_id=a.attempt_id, paid=True)
            )
            for a in (first, second)
        )
    )
    attempts = await deps.payments.get_order_payments(order_id=data.order_id)
    assert sorted(a.status for a in attempts) == ["canceled", "paid"]
    assert [a.refund_required for a in attempts if a.status == "canceled"] == [True]
    assert len(await published(deps, SUCCEEDED)) == 1


class CountingProvider(DevProvider):
    """The dev provider, counting what reconciliation asks it."""

    def __init__(self) -> None:
        super().__init__(checkout_url=lambda attempt_id: f"http://shop.test/pay/{attempt_id}")
        self.asked: list[str] = []

    async def checkout_status(self, session_id: str) -> ProviderEvent | None:
        self.asked.append(session_id)
        await asyncio.sleep(0.01)  # a provider call takes a while: replicas overlap
        return None


async def test_reconciling_replicas_ask_about_each_attempt_once(
    tmp_path: Path, pg_database_url: str
) -> None:
    settings = settings_for(tmp_path, database_url=pg_database_url, reconcile_after_s=0)
    providers = [CountingProvider() for _ in range(3)]
    async with contextlib.AsyncExitStack() as stack:
        replicas = [
            await stack.enter_async_context(
                running_deps(settings, providers={"dev": cast(PaymentProvider, provider)})
            )
            for provider in providers
        ]
        shopper = user()
        customer_id = await add_customer(replicas[0], shopper)
        for _ in range(12):
            data = start_payment(owner=shopper.owner, customer_id=customer_id)  # type: ignore[arg-type]
            await replicas[0].payments.start_payment(data=data)
        runs = await asyncio.gather(*(r.reconciler.reconcile() for r in replicas for _ in range(2)))
    asked = [session for provider in providers for session in provider.asked]
    assert len(asked) == len(set(asked)) == 12
    assert sum(run.checked for run in runs) == 12


async def test_racing_retries_of_one_checkout_make_one_attempt(deps: PaymentsDeps) -> None:
    shopper = user()
    data = start_payment(owner=shopper.owner, customer_id=await add_customer(deps, shopper))  # type: ignore[arg-type]
    results = await asyncio.gather(*(deps.payments.start_payment(data=data) for _ in range(5)))
    assert len({payment.attempt_id for payment, _ in results}) == 1
    assert [created for _, created in results].count(True) == 1


async def test_anonymous_merged_through_rabbitmq_keeps_one_default(
    tmp_path: Path, pg_database_url: str, bus_names: BusNames
) -> None:
    runtime_settings = RuntimeSettings(
        data_dir=tmp_path,
        broker_url=bus_names.url,
        exchange=bus_names.exchange,
        queue_prefix=bus_names.queue_prefix,
        outbox_poll_interval_ms=20,
        service_token=TEST_SERVICE_TOKEN,
    )
    shared = shared_for(runtime_settings, composed=True)
    settings = PaymentsSettings(
        runtime=runtime_settings, database_url=pg_database_url, provider="dev"
    )
    deps = build_deps(settings, shared)
    await upgrade(deps.runtime.engine, deps.runtime.migrations_dir)  # `store migrate` in prod
    await deps.runtime.start()
    await shared.bus.start()
    try:
        shopper, member = anonymous(), user()
        await add_customer(deps, shopper, name="Anon first")
        await add_customer(deps, shopper, name="Anon second")
        own = await add_customer(deps, member, name="Own")
        envelope = Envelope.wrap(
            AnonymousMerged(anonymous_id=shopper.anonymous_id, user_id=member.user_id),  # type: ignore[arg-type]
            producer="cart",
        )
        for _ in range(2):  # a redelivered event changes nothing
            await shared.bus.publish(envelope)
        for _ in range(200):
            mine = await deps.customers.get_customers_for_user(principal=member)
            if len(mine) == 3:
                break
            await asyncio.sleep(0.05)
        assert [c.name for c in mine] == ["Anon first", "Anon second", "Own"]
        assert [c.id for c in mine if c.is_default] == [own]
        assert await deps.customers.get_customers_for_user(principal=shopper) == []
        moved = [e for e in await published(deps, CUSTOMER_CHANGED) if e["owner"]["kind"] == "user"]
        assert len(moved) == 2
    finally:
        await deps.runtime.stop()
        await shared.bus.stop()
        await shared.directory.aclose()


class OnePaidProvider(CountingProvider):
    """The dev provider, where one session was paid (its webhook lost) and none else was."""

    def __init__(self) -> None:
        super().__init__()
        self.paid: dict[str, str] = {}  # session id -> attempt id

    async def checkout_status(self, session_id: str) -> ProviderEvent | None:
        self.asked.append(session_id)
        attempt_id = self.paid.get(session_id)
        if attempt_id is None:
            return None
        return provider_event("checkout_completed", attempt_id=attempt_id, paid=True)


async def abandon(deps: PaymentsDeps, template_id: str, count: int, **values: Any) -> None:
    """`count` copies of an unpaid attempt: checkouts their shoppers left."""
    from services.payments.tables import payment_attempts

    async with deps.runtime.transaction() as session:
        row = (
            (
                await session.execute(
                    payment_attempts.select().where(payment_attempts.c.id == template_id)
                )
            )
            .mappings()
            .one()
        )
        copies = []
        for index in range(count):
            token = str(uuid.uuid4())
            copies.append(
                {
                    **row,
                    "id": token,
                    "order_id": token,
                    "provider_session_id": f"abandoned-{token}",
                    **values,
                }
            )
            if len(copies) == 1000 or index == count - 1:
                await session.execute(payment_attempts.insert(), copies)
                copies = []


async def test_a_lost_webhook_is_found_in_the_next_run_behind_ten_thousand_abandoned_checkouts(
    tmp_path: Path, pg_database_url: str
) -> None:
    settings = settings_for(tmp_path, database_url=pg_database_url, reconcile_after_s=0)
    provider = OnePaidProvider()
    async with running_deps(settings, providers={"dev": cast(PaymentProvider, provider)}) as deps:
        shopper = user()
        customer_id = await add_customer(deps, shopper)
        template, _ = await deps.payments.start_payment(
            data=start_payment(owner=shopper.owner, customer_id=customer_id)  # type: ignore[arg-type]
        )
        hour_ago = datetime.now(UTC) - timedelta(hours=1)
        # Ten thousand abandoned checkouts: half never looked at, half looked at and due again.
        await abandon(deps, template.attempt_id, 5000, created_at=hour_ago)
        await abandon(
            deps,
            template.attempt_id,
            5000,
            created_at=hour_ago,
            reconcile_after=hour_ago,
            reconcile_checks=3,
        )
        # A shopper pays now; the webhook never arrives.
        data = start_payment(owner=shopper.owner, customer_id=customer_id)  # type: ignore[arg-type]
        fresh, _ = await deps.payments.start_payment(data=data)
        attempt = await deps.payments.get_payment(attempt_id=fresh.attempt_id)
        session_id = await session_of(deps, fresh.attempt_id)
        provider.paid[session_id] = fresh.attempt_id
        run = await deps.reconciler.reconcile()
        assert run.settled == 1, run
        assert (await deps.payments.get_payment(attempt_id=fresh.attempt_id)).status == "paid"
        assert attempt.status == "unpaid"
        assert [p["order_id"] for p in await published(deps, SUCCEEDED)] == [data.order_id]
        # The next runs go on through the backlog, each attempt once until its next look.
        second = await deps.reconciler.reconcile()
        assert second.checked == settings.reconcile_batch
        assert len(provider.asked) == len(set(provider.asked))


async def session_of(deps: PaymentsDeps, attempt_id: str) -> str:
    from services.payments.tables import payment_attempts

    async with deps.runtime.sessions() as session:
        found = await session.execute(
            select(payment_attempts.c.provider_session_id).where(
                payment_attempts.c.id == attempt_id
            )
        )
        return str(found.scalar_one())
