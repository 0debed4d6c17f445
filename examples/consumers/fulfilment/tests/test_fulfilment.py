"""Fulfilment on FastStream's TestRabbitBroker: the contract's example events go in, shipments
come out, once per event."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from faststream.rabbit import TestRabbitBroker

from examples.consumers.fulfilment.app import Fulfilment, Settings, Shipment, create_fulfilment
from libs.contracts.envelope import Envelope
from libs.contracts.events import OrderPaid
from libs.contracts.examples import example_envelope

SETTINGS = Settings(exchange="store.events", queue="fulfilment.orders-paid")


@pytest.fixture
async def fulfilment(tmp_path: Path) -> AsyncIterator[Fulfilment]:
    app = create_fulfilment(Settings(database=tmp_path / "fulfilment.db"))
    async with TestRabbitBroker(app.broker):
        yield app
    app.shipments.close()


async def deliver(app: Fulfilment, envelope: Envelope) -> None:
    await app.broker.publish(
        envelope.model_dump(mode="json"), exchange=SETTINGS.exchange, routing_key=envelope.type
    )


def paid_order(*lines: tuple[str, int, bool]) -> Envelope:
    example = example_envelope(OrderPaid)
    payload = {
        **example.payload,
        "lines": [
            {
                "pricing_id": f"pr_{key}",
                "product_key": key,
                "name": key,
                "quantity": q,
                "shippable": s,
            }
            for key, q, s in lines
        ],
    }
    return example.model_copy(update={"event_id": uuid.uuid4(), "payload": payload})


async def test_the_contract_example_ships_its_shippable_line(fulfilment: Fulfilment) -> None:
    await deliver(fulfilment, example_envelope(OrderPaid))
    assert fulfilment.shipments.all() == [
        Shipment("3f1c2a9e-8b7d-4e21-9a65-0c4b5d6e7f80", "2026-000042", "mug", 2)
    ]


async def test_only_shippable_lines_are_shipped(fulfilment: Fulfilment) -> None:
    envelope = paid_order(("mug", 1, True), ("course", 1, False), ("tote", 3, True))
    await deliver(fulfilment, envelope)
    shipped = {(s.product_key, s.quantity) for s in fulfilment.shipments.all()}
    assert shipped == {("mug", 1), ("tote", 3)}


async def test_a_redelivered_event_ships_nothing_twice(fulfilment: Fulfilment) -> None:
    envelope = paid_order(("mug", 2, True))
    for _ in range(3):
        await deliver(fulfilment, envelope)
    assert len(fulfilment.shipments.all()) == 1
    await deliver(fulfilment, paid_order(("mug", 2, True)))  # another event: shipped again
    assert len(fulfilment.shipments.all()) == 2


async def test_an_order_without_shippable_lines_ships_nothing(fulfilment: Fulfilment) -> None:
    await deliver(fulfilment, paid_order(("course", 1, False)))
    assert fulfilment.shipments.all() == []


async def test_fields_added_within_v1_are_ignored(fulfilment: Fulfilment) -> None:
    envelope = paid_order(("mug", 1, True))
    body = envelope.model_dump(mode="json")
    body["added_later"] = {"x": 1}
    body["payload"]["gift_wrap"] = True
    body["payload"]["lines"][0]["colour"] = "blue"
    await fulfilment.broker.publish(body, exchange=SETTINGS.exchange, routing_key=envelope.type)
    assert [(s.product_key, s.quantity) for s in fulfilment.shipments.all()] == [("mug", 1)]
