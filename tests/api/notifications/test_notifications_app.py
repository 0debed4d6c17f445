"""The notifications app on the in-process bus and SQLite: one message per event, retried
while the mail server refuses, the sent-message log over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from libs.contracts.envelope import Envelope, Event
from libs.contracts.events import AnonymousMerged
from libs.contracts.orders import OrderRenewalOut
from libs.runtime.bus import InProcessBus
from libs.runtime.runtime import shared_for
from libs.runtime.settings import RuntimeSettings
from services.notifications.app import create_app
from services.notifications.bootstrap import build_deps
from services.notifications.settings import NotificationsSettings
from tests.support.services import service_headers
from tests.unit.notifications.builders import (
    FakeOrders,
    RecordingMailer,
    created,
    fulfilled,
    new_id,
    order_out,
    paid,
    past_due,
    payment_failed,
    refunded,
    renewed,
)


@dataclass
class Notifications:
    http: httpx.AsyncClient
    bus: InProcessBus
    orders: FakeOrders
    mailer: RecordingMailer

    async def deliver(self, *envelopes: Envelope) -> None:
        for envelope in envelopes:
            await self.bus.publish(envelope)
        await self.bus.idle(within_s=10)

    async def event(self, payload: Event) -> Envelope:
        envelope = Envelope.wrap(payload, producer="test")
        await self.deliver(envelope)
        return envelope

    def subjects(self) -> list[str]:
        return [str(message["Subject"]) for message in self.mailer.sent]


@pytest.fixture
async def notifications(tmp_path: Path) -> AsyncIterator[Notifications]:
    runtime = RuntimeSettings(
        data_dir=tmp_path, consumer_retry_ladder_ms=(20,), consumer_retry_budget_s=0.5
    )
    shared = shared_for(runtime)
    orders, mailer = FakeOrders(), RecordingMailer()
    deps = build_deps(NotificationsSettings(runtime=runtime), shared, mailer=mailer, orders=orders)
    app = create_app(deps=deps)
    async with app.router.lifespan_context(app):
        await shared.bus.start()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://n") as http:
            assert isinstance(shared.bus, InProcessBus)
            yield Notifications(http=http, bus=shared.bus, orders=orders, mailer=mailer)
        await shared.bus.stop()


async def test_each_event_sends_its_message_once_even_when_delivered_twice(
    notifications: Notifications,
) -> None:
    order = notifications.orders.add(order_out(locale="de"))
    await notifications.event(created(order))
    for event in (
        paid(order),
        fulfilled(order),
        refunded(order, 500),
        renewed(order, 900),
        past_due(order, 900),
    ):
        envelope = Envelope.wrap(event, producer="test")
        await notifications.deliver(envelope, envelope)

    assert notifications.subjects() == [
        f"Ihre Bestellung {order.number} ist bestätigt",
        f"Ihre Bestellung {order.number} wurde versandt",
        f"Erstattung zu Ihrer Bestellung {order.number}",
        "Ihr Abonnement wurde verlängert",
        "Wir konnten Ihr Abonnement nicht verlängern",
    ]
    assert len({m["Message-ID"] for m in notifications.mailer.sent}) == 5


async def test_a_refused_message_is_retried_until_the_server_takes_it(
    notifications: Notifications,
) -> None:
    order = notifications.orders.add(order_out())
    notifications.mailer.down = 3
    envelope = await notifications.event(paid(order))

    assert notifications.subjects() == [f"Your order {order.number} is confirmed"]
    assert notifications.bus.dead_letters == []
    log = (await notifications.http.get("/messages", headers=service_headers())).json()
    assert [(m["event_id"], m["kind"]) for m in log["items"]] == [
        (str(envelope.event_id), "order_paid")
    ]


async def test_a_message_refused_past_the_budget_is_dead_lettered_and_not_logged(
    notifications: Notifications,
) -> None:
    order = notifications.orders.add(order_out())
    notifications.mailer.down = 10_000
    await notifications.event(paid(order))

    assert notifications.mailer.sent == []
    assert [d.envelope.type for d in notifications.bus.dead_letters] == ["orders.order.paid.v1"]
    log = (await notifications.http.get("/messages", headers=service_headers())).json()
    assert log["items"] == []


async def test_payment_events_find_the_owner_from_the_created_event_and_merges(
    notifications: Notifications,
) -> None:
    order = order_out(owner=None)
    anonymous = order.owner.model_copy(update={"kind": "anonymous"})
    order = notifications.orders.add(order.model_copy(update={"owner": anonymous}))
    await notifications.event(created(order))
    # The shopper logs in: orders re-owns the order, and so does the projection here.
    merged_owner = anonymous.model_copy(update={"kind": "user", "id": "user_merged"})
    notifications.orders.add(order.model_copy(update={"owner": merged_owner, "paid": None}))
    await notifications.event(AnonymousMerged(anonymous_id=anonymous.id, user_id="user_merged"))
    await notifications.event(payment_failed(order))

    assert notifications.subjects() == [
        f"The payment for your order {order.number} did not go through"
    ]


async def test_a_payment_failure_of_an_order_paid_meanwhile_sends_nothing(
    notifications: Notifications,
) -> None:
    order = notifications.orders.add(order_out())
    await notifications.event(created(order))
    await notifications.event(payment_failed(order))
    assert notifications.mailer.sent == []


async def test_a_renewal_order_is_announced_by_the_renewal_message_alone(
    notifications: Notifications,
) -> None:
    first = notifications.orders.add(order_out())
    renewal = order_out().model_copy(
        update={
            "renewal": OrderRenewalOut(
                subscription_id=new_id(),
                first_order_id=first.id,
                invoice_reference="in_1",
                period_end=None,
            )
        }
    )
    notifications.orders.add(renewal)
    for event in (created(first), created(renewal), paid(renewal), renewed(first, 2400)):
        await notifications.event(event)
    assert len(notifications.mailer.sent) == 1
    assert notifications.subjects() == ["Your subscription was renewed"]


async def test_an_event_about_an_unknown_order_waits_then_dead_letters(
    notifications: Notifications,
) -> None:
    order = notifications.orders.add(order_out())
    await notifications.event(refunded(order, 100))
    assert notifications.mailer.sent == []
    assert len(notifications.bus.dead_letters) == 1


async def test_the_log_needs_the_service_credential(notifications: Notifications) -> None:
    response = await notifications.http.get("/messages")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_service_token"
