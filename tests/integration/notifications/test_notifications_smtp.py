"""Notifications over real RabbitMQ, PostgreSQL and a real SMTP server: one message per
event when the event comes twice, and a message retried until the SMTP server is back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from libs.contracts.envelope import Envelope
from libs.runtime.delivery import RetryPolicy
from libs.runtime.migrations import upgrade
from libs.runtime.rabbit import RabbitBus
from libs.runtime.runtime import shared_for
from libs.runtime.settings import RuntimeSettings
from services.notifications.app import create_app
from services.notifications.bootstrap import NotificationsDeps, build_deps
from services.notifications.settings import NotificationsSettings
from tests.conftest import BusNames
from tests.support.services import TEST_SERVICE_TOKEN
from tests.support.smtp import MailCatcher
from tests.unit.notifications.builders import FakeOrders, fulfilled, order_out, paid

pytestmark = pytest.mark.integration


async def eventually(check: Callable[[], bool], what: str, within_s: float = 30) -> None:
    for _ in range(int(within_s / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not within {within_s}s")


@dataclass
class Running:
    deps: NotificationsDeps
    orders: FakeOrders
    publisher: RabbitBus

    async def publish(self, *envelopes: Envelope) -> None:
        for envelope in envelopes:
            await self.publisher.publish(envelope)


@contextlib.asynccontextmanager
async def notifications(
    tmp_path: Path, database_url: str, names: BusNames, smtp_url: str
) -> AsyncIterator[Running]:
    runtime = RuntimeSettings(
        data_dir=tmp_path,
        broker_url=names.url,
        exchange=names.exchange,
        queue_prefix=names.queue_prefix,
        service_token=TEST_SERVICE_TOKEN,
        consumer_retry_ladder_ms=(1_000,),
        consumer_retry_budget_s=60,
    )
    settings = NotificationsSettings(
        runtime=runtime, database_url=database_url, smtp_url=smtp_url, smtp_security="none"
    )
    orders = FakeOrders()
    deps = build_deps(settings, shared_for(runtime), orders=orders)
    await upgrade(deps.runtime.engine, deps.runtime.migrations_dir)
    publisher = RabbitBus(
        names.url,
        exchange=names.exchange,
        queue_prefix=names.queue_prefix,
        retry=RetryPolicy(ladder_ms=(1_000,), budget_ms=60_000),
    )
    await publisher.start()
    app = create_app(deps=deps)
    try:
        async with app.router.lifespan_context(app):
            await eventually(lambda: deps.runtime.bus.broker is not None, "bus connected")  # type: ignore[attr-defined]
            yield Running(deps=deps, orders=orders, publisher=publisher)
    finally:
        await publisher.stop()


async def test_an_event_delivered_twice_sends_one_message(
    tmp_path: Path, pg_database_url: str, bus_names: BusNames
) -> None:
    with MailCatcher() as smtp:
        async with notifications(tmp_path, pg_database_url, bus_names, smtp.smtp_url) as running:
            order = running.orders.add(order_out(locale="fr"))
            confirmation = Envelope.wrap(paid(order), producer="orders")
            shipped = Envelope.wrap(fulfilled(order), producer="orders")
            await running.publish(confirmation, confirmation, shipped, shipped)

            await eventually(lambda: len(smtp.messages()) >= 2, "two messages")
            await asyncio.sleep(1.5)  # room for a wrong third one to arrive

        received = smtp.messages()
    assert [m["Subject"] for m in received] == [
        f"Votre commande {order.number} est confirmée",
        f"Votre commande {order.number} a été expédiée",
    ]
    assert [m["Message-ID"].strip() for m in received] == [
        f"<{confirmation.event_id}.order_paid@store.localhost>",
        f"<{shipped.event_id}.order_shipped@store.localhost>",
    ]
    assert received[0].get_content_type() == "multipart/alternative"
    assert received[0]["To"] == "ada@example.com"


async def test_a_message_waits_for_the_smtp_server_and_is_sent_once_it_is_back(
    tmp_path: Path, pg_database_url: str, bus_names: BusNames
) -> None:
    smtp = MailCatcher()  # down: nothing listens on its port yet
    try:
        async with notifications(tmp_path, pg_database_url, bus_names, smtp.smtp_url) as running:
            order = running.orders.add(order_out())
            await running.publish(Envelope.wrap(paid(order), producer="orders"))
            await asyncio.sleep(3)  # a few refused attempts, on the retry ladder
            assert smtp.messages() == []
            smtp.start()

            await eventually(lambda: len(smtp.messages()) == 1, "the confirmation")
            await asyncio.sleep(1.5)
            log = await running.deps.service.list_sent_messages(limit=10)
        assert [m["Subject"] for m in smtp.messages()] == [
            f"Your order {order.number} is confirmed"
        ]
        assert [(m.kind, m.order_id) for m in log] == [("order_paid", order.id)]
    finally:
        smtp.stop()
