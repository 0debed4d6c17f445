"""The mailer on FastStream's TestRabbitBroker: one mail per failed payment, whatever the
number of deliveries."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from faststream.rabbit import TestRabbitBroker

from examples.consumers.mailer.app import Mail, Mailer, Settings, create_mailer
from libs.contracts.envelope import Envelope
from libs.contracts.events import PaymentExpired, PaymentFailed, PaymentSucceeded
from libs.contracts.examples import example_envelope

EXCHANGE = Settings().exchange


@pytest.fixture
async def mailer(tmp_path: Path) -> AsyncIterator[Mailer]:
    app = create_mailer(Settings(database=tmp_path / "mailer.db"))
    async with TestRabbitBroker(app.broker):
        yield app
    app.outbox.close()


async def deliver(app: Mailer, envelope: Envelope) -> None:
    await app.broker.publish(
        envelope.model_dump(mode="json"), exchange=EXCHANGE, routing_key=envelope.type
    )


def failed(order_id: str) -> Envelope:
    example = example_envelope(PaymentFailed)
    payload = {**example.payload, "order_id": order_id}
    return example.model_copy(update={"event_id": uuid.uuid4(), "payload": payload})


async def test_the_contract_example_queues_a_payment_failed_mail(mailer: Mailer) -> None:
    await deliver(mailer, example_envelope(PaymentFailed))
    assert mailer.outbox.mails() == [Mail("3f1c2a9e-8b7d-4e21-9a65-0c4b5d6e7f80", "payment-failed")]


async def test_a_redelivered_failure_sends_one_mail(mailer: Mailer) -> None:
    envelope = failed("order-1")
    for _ in range(3):
        await deliver(mailer, envelope)
    await deliver(mailer, failed("order-1"))  # a second failed attempt: a second mail
    assert mailer.outbox.mails() == [Mail("order-1", "payment-failed")] * 2


async def test_other_payment_events_do_not_reach_the_mailer(mailer: Mailer) -> None:
    from faststream.exceptions import SubscriberNotFound

    for model in (PaymentSucceeded, PaymentExpired):
        with pytest.raises(SubscriberNotFound):  # the queue is not bound to them
            await mailer.broker.publish(
                example_envelope(model).model_dump(mode="json"),
                exchange=EXCHANGE,
                routing_key=model.event_type,
            )
    assert mailer.outbox.mails() == []
