"""Fulfilment on real RabbitMQ, fed by a real checkout of the store in the distributed mode."""

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
from examples.consumers.fulfilment.app import Settings, create_fulfilment
from libs.contracts.events import OrderPaid
from libs.contracts.examples import example_envelope
from tests.support.cluster import RunningStore

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


async def test_a_paid_checkout_is_shipped_once(
    store: RunningStore, amqp_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        amqp_url=amqp_url,
        exchange=store.env["STORE_EXCHANGE"],
        queue=unique_queue("fulfilment"),
        database=tmp_path / "fulfilment.db",
    )
    fulfilment = create_fulfilment(settings)
    await fulfilment.app.start()
    try:
        order_id = await buy(store, shippable=True, button="pay")
        shipped = await eventually(
            fulfilment.shipments.all, lambda s: len(s) > 0, "a shipment of the paid order"
        )
        assert [(s.order_id, s.quantity) for s in shipped] == [(order_id, 2)]

        # The same event delivered twice ships once. A later event (handled after both, as
        # the queue is consumed in order by one worker) marks that both copies were handled.
        envelope = example_envelope(OrderPaid)
        await deliver_twice_then_marker(fulfilment.broker, settings.exchange, envelope)
        after = await eventually(
            fulfilment.shipments.all,
            lambda shipped: "marker" in {s.order_id for s in shipped},
            "the marker event's shipment",
        )
        assert [s.order_id for s in after] == [order_id, envelope.payload["order_id"], "marker"]
    finally:
        await fulfilment.app.stop()
        await delete_queues(amqp_url, settings.queue)
