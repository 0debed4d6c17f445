"""The RabbitMQ bus's routing of failures, on FastStream's in-memory `TestRabbitBroker`:
which queue a failed or unreadable message is parked on. (Confirms, returns and TTLs need a
real broker: tests/integration/runtime.)"""

from __future__ import annotations

from typing import Any

from faststream.rabbit import RabbitMessage, TestRabbitBroker

from libs.contracts.envelope import Envelope
from libs.contracts.events import AnonymousMerged
from libs.runtime.delivery import RetryPolicy
from libs.runtime.rabbit import RabbitBus


def merged() -> Envelope:
    return Envelope.wrap(AnonymousMerged(anonymous_id="a", user_id="u"), producer="t")


async def run(bus: RabbitBus, body: bytes, *, attempt: int = 0) -> dict[str, Any]:
    """Deliver `body` to the consumer `c`; returns {queue: headers} of what it parked."""
    broker = bus.build_broker()
    parked: dict[str, Any] = {}

    def parker(name: str) -> Any:
        async def park(message: RabbitMessage) -> None:
            parked[name] = message.headers

        return park

    async def the_delivery(message: RabbitMessage) -> RabbitMessage:
        # The bus's broker injects no arguments (ADR 003): a handler takes the delivery from
        # its decoder, as the bus's own consumers do.
        return message

    for spec in bus.queues_of("c", [AnonymousMerged.event_type])[1:]:
        broker.subscriber(spec.name, decoder=the_delivery)(parker(spec.name))
    async with TestRabbitBroker(broker) as test_broker:
        bus.broker = test_broker
        await test_broker.publish(
            body, queue=bus.queue_name("c"), headers={"x-store-attempt": attempt}
        )
    return parked


def bus_with(handler: Any, retry: RetryPolicy | None = None) -> RabbitBus:
    bus = RabbitBus("amqp://127.0.0.1:9/", exchange="x", queue_prefix="p", retry=retry)
    bus.subscribe("c", {AnonymousMerged.event_type: handler})
    return bus


async def fails(envelope: Envelope) -> None:
    raise RuntimeError("database away")


async def test_a_handled_event_is_parked_nowhere() -> None:
    seen: list[Envelope] = []

    async def handle(envelope: Envelope) -> None:
        seen.append(envelope)

    envelope = merged()
    assert await run(bus_with(handle), envelope.to_bytes()) == {}
    assert [e.event_id for e in seen] == [envelope.event_id]


async def test_each_failure_climbs_one_rung_of_the_ladder() -> None:
    bus = bus_with(fails, RetryPolicy(ladder_ms=(1_000, 10_000), budget_ms=60_000))
    first = await run(bus, merged().to_bytes(), attempt=0)
    assert list(first) == ["p.c.retry.1s"]
    assert first["p.c.retry.1s"]["x-store-attempt"] == 1
    assert "database away" in first["p.c.retry.1s"]["x-store-last-error"]
    assert list(await run(bus, merged().to_bytes(), attempt=1)) == ["p.c.retry.10s"]
    assert list(await run(bus, merged().to_bytes(), attempt=4)) == ["p.c.retry.10s"]


async def test_a_spent_budget_goes_to_the_dead_letter_queue() -> None:
    bus = bus_with(fails, RetryPolicy(ladder_ms=(1_000,), budget_ms=3_000))
    parked = await run(bus, merged().to_bytes(), attempt=3)
    assert list(parked) == ["p.c.dlq"]
    assert parked["p.c.dlq"]["x-store-attempt"] == 3


async def test_an_unreadable_body_goes_straight_to_the_dead_letter_queue() -> None:
    assert list(await run(bus_with(fails), b"\xff not json")) == ["p.c.dlq"]
