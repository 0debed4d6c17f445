"""The mailer on real RabbitMQ, fed by a real checkout of the store in the distributed mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from examples.consumers.conftest import (
    buy,
    delete_queues,
    deliver_twice_then_marker,
    eventually,
    unique_queue,
)
from examples.consumers.mailer.app import Mail, Settings, create_mailer
from libs.contracts.events import PaymentFailed
from libs.contracts.examples import example_envelope
from tests.support.cluster import RunningStore

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


async def test_a_declined_payment_sends_one_mail(
    store: RunningStore, amqp_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        amqp_url=amqp_url,
        exchange=store.env["STORE_EXCHANGE"],
        queue=unique_queue("mailer"),
        database=tmp_path / "mailer.db",
    )
    mailer = create_mailer(settings)
    await mailer.app.start()
    try:
        order_id = await buy(store, shippable=True, button="decline")
        mails = await eventually(mailer.outbox.mails, lambda m: len(m) > 0, "a mail")
        assert mails == [Mail(order_id, "payment-failed")]

        # Delivered twice, mailed once; the marker, handled after both, says when to look.
        envelope = example_envelope(PaymentFailed)
        await deliver_twice_then_marker(mailer.broker, settings.exchange, envelope)
        after = await eventually(
            mailer.outbox.mails,
            lambda sent: Mail("marker", "payment-failed") in sent,
            "the marker's mail",
        )
        assert [m.order_id for m in after] == [order_id, envelope.payload["order_id"], "marker"]
    finally:
        await mailer.app.stop()
        await delete_queues(amqp_url, settings.queue)
