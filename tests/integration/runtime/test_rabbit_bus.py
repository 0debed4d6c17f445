"""What the RabbitMQ bus guarantees beyond a round trip, on a real broker: unroutable publishes
fail, a subscriber added later misses nothing, retries wait on a ladder without head-of-line
blocking, and nothing is dropped without a log line and a metric."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import ClassVar

import aio_pika
import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from libs.contracts.envelope import EVENTS, Envelope, Event
from libs.contracts.topology import (
    CONSUMERS,
    DELIVERY_LIMIT,
    dead_letter_queue_name,
    definitions,
    unclaimed_queue,
)
from libs.runtime.delivery import RetryPolicy, UnroutableEvent, delivery_metrics
from libs.runtime.observability import metrics
from libs.runtime.rabbit import QueueMismatch, RabbitBus, rabbit_queue
from tests.conftest import BusNames
from tests.integration.runtime.support import (
    create_tables,
    eventually,
    pending,
    probe_runtime,
    rows,
    tcp_proxy,
)
from tests.support.cluster import free_port

pytestmark = pytest.mark.integration


def new_event_type() -> type[Event]:
    """A payload of a type no queue is bound to yet (and that is in no registry)."""
    letters = "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:10])

    class Launched(Event):
        event_type: ClassVar[str] = f"probe.gadget{letters}.launched.v1"
        name: str

    return Launched


def bus_for(names: BusNames, **kwargs) -> RabbitBus:  # type: ignore[no-untyped-def]
    return RabbitBus(names.url, exchange=names.exchange, queue_prefix=names.queue_prefix, **kwargs)


async def dead_letters(names: BusNames, consumer: str) -> list[aio_pika.abc.AbstractMessage]:
    connection = await aio_pika.connect(names.url)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(dead_letter_queue_name(names.queue_prefix, consumer))
        found = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            found.append(message)
        return found
    finally:
        await connection.close()


async def test_an_unroutable_publish_fails_and_is_counted(bus_names: BusNames) -> None:
    bus = bus_for(bus_names)
    await bus.start()
    try:
        launched = new_event_type()
        envelope = Envelope.wrap(launched(name="nobody listens"), producer="t")
        before = delivery_metrics.unroutable.labels(type=launched.event_type)._value.get()
        with pytest.raises(UnroutableEvent):
            await bus.publish(envelope)
        assert delivery_metrics.unroutable.labels(type=launched.event_type)._value.get() == (
            before + 1
        )
    finally:
        await bus.stop()


async def test_a_new_subscriber_receives_every_event_from_its_first_deployment(
    pg_database_url: str, bus_names: BusNames, tmp_path: Path
) -> None:
    """Returned while nothing is bound, kept in the outbox; queued once the new version has
    declared its queue, even before it consumes; all handled once it runs."""
    launched = new_event_type()
    producer_bus = bus_for(bus_names)
    producer, _ = probe_runtime(pg_database_url, producer_bus, tmp_path, name="probe")
    await create_tables(producer)
    await producer.start()
    await eventually(producer_bus.ping)
    subscriber_bus = bus_for(bus_names)
    subscriber, seen = probe_runtime(pg_database_url, subscriber_bus, tmp_path, name="consumer")

    async def on_launched(_service, session, payload) -> None:  # type: ignore[no-untyped-def]
        await session.execute(seen.insert().values(user_id=payload.name))

    subscriber.subscribe(None, {launched: on_launched})
    try:
        async with producer.transaction() as session:
            await producer.record(session, launched(name="before-any-queue"))

        async def returned_and_kept() -> bool:
            async with producer.sessions() as session:
                query = select(producer.outbox.c.published_at, producer.outbox.c.last_error)
                published_at, error = (await session.execute(query)).one()
            return published_at is None and error is not None and "returned" in error

        await eventually(returned_and_kept)
        await producer.relay.stop()  # a few failed attempts are enough to make the point

        # The new version starts: it declares its queue and bindings first ...
        declarer = bus_for(bus_names)
        await declarer.start()
        try:
            await declarer.declare_consumer_queues("consumer", [launched.event_type])
        finally:
            await declarer.stop()
        await producer.relay.start()
        # ... so what is published before it consumes waits in its queue.
        async with producer.transaction() as session:
            await producer.record(session, launched(name="before-it-consumes"))
        producer.relay.notify()

        async def all_published() -> bool:
            return await pending(producer) == 0

        await eventually(all_published)

        await subscriber.start()
        async with producer.transaction() as session:
            await producer.record(session, launched(name="while-it-runs"))

        async def all_three() -> bool:
            return len(await rows(subscriber, seen)) == 3

        await eventually(all_three)
        assert sorted(await rows(subscriber, seen)) == [
            "before-any-queue",
            "before-it-consumes",
            "while-it-runs",
        ]
    finally:
        await subscriber.stop()
        await producer.stop()


async def test_a_long_retry_does_not_hold_back_a_short_one(bus_names: BusNames) -> None:
    """A message waiting 30 s on the top rung; another that failed once is retried after 50 ms."""
    launched = new_event_type()
    bus = bus_for(bus_names, retry=RetryPolicy(ladder_ms=(50, 30_000), budget_ms=3_600_000))
    attempts: dict[str, int] = {}
    handled: list[str] = []

    async def handle(envelope: Envelope) -> None:
        name = envelope.payload["name"]
        attempts[name] = attempts.get(name, 0) + 1
        if name == "stubborn" or attempts[name] == 1:
            raise RuntimeError("not yet")
        handled.append(name)

    bus.subscribe("consumer", {launched.event_type: handle})
    await bus.start()
    try:
        await bus.publish(Envelope.wrap(launched(name="stubborn"), producer="t"))

        async def on_top_rung() -> bool:
            return attempts.get("stubborn") == 2  # failed, 50 ms, failed: now waits 30 s

        await eventually(on_top_rung)
        await bus.publish(Envelope.wrap(launched(name="quick"), producer="t"))

        async def quick_handled() -> bool:
            return handled == ["quick"]

        await eventually(quick_handled, within_s=10)
        assert attempts == {"stubborn": 2, "quick": 2}
    finally:
        await bus.stop()


async def test_after_the_budget_the_event_is_dead_lettered_with_its_history(
    bus_names: BusNames,
) -> None:
    launched = new_event_type()
    bus = bus_for(bus_names, retry=RetryPolicy(ladder_ms=(20, 50), budget_ms=100))
    attempts: list[int] = []

    async def always_fails(envelope: Envelope) -> None:
        attempts.append(1)
        raise ValueError("cannot handle this")

    bus.subscribe("consumer", {launched.event_type: always_fails})
    await bus.start()
    before = metrics.events_dead_lettered.labels(consumer="consumer")._value.get()
    try:
        envelope = Envelope.wrap(launched(name="poison"), producer="t")
        await bus.publish(envelope)

        async def counted() -> bool:
            return metrics.events_dead_lettered.labels(consumer="consumer")._value.get() > before

        await eventually(counted)
        (message,) = await dead_letters(bus_names, "consumer")
        assert Envelope.from_bytes(message.body).event_id == envelope.event_id
        # 20 + 50 + 50 ms spent the 100 ms budget: three retries, four attempts.
        assert len(attempts) == 4
        assert message.headers["x-store-attempt"] == 3
        assert "cannot handle this" in str(message.headers["x-store-last-error"])
        deaths = {(d["queue"], d["count"]) for d in message.headers["x-death"]}  # type: ignore[union-attr]
        rungs = f"{bus_names.queue_prefix}.consumer.retry"
        assert deaths == {(f"{rungs}.20ms", 1), (f"{rungs}.50ms", 2)}
    finally:
        await bus.stop()


async def test_unreadable_and_unknown_messages_are_counted_not_dropped_silently(
    bus_names: BusNames,
) -> None:
    launched, other = new_event_type(), new_event_type()
    bus = bus_for(bus_names)
    handled: list[str] = []

    async def handle(envelope: Envelope) -> None:
        handled.append(envelope.payload["name"])

    bus.subscribe("consumer", {launched.event_type: handle})
    await bus.start()
    unreadable = delivery_metrics.unreadable.labels(consumer="consumer")
    unknown = delivery_metrics.unknown_type.labels(consumer="consumer", type=other.event_type)
    unreadable_before, unknown_before = unreadable._value.get(), unknown._value.get()
    try:
        assert bus.broker is not None
        # A binding the handlers do not cover (an old binding, a newer producer).
        spec = bus.queues_of("consumer", [launched.event_type])[0]
        queue = await bus.broker.declare_queue(rabbit_queue(spec))
        await queue.bind(bus_names.exchange, routing_key=other.event_type)
        await bus.publish(Envelope.wrap(other(name="unknown"), producer="t"))
        await bus.broker.publish(
            b"not json",
            exchange=bus_names.exchange,
            routing_key=launched.event_type,
            message_id="m-1",
            message_type=launched.event_type,
        )
        await bus.publish(Envelope.wrap(launched(name="marker"), producer="t"))

        async def all_seen() -> bool:
            return handled == ["marker"] and unreadable._value.get() > unreadable_before

        await eventually(all_seen)
        assert unknown._value.get() == unknown_before + 1
        (message,) = await dead_letters(bus_names, "consumer")
        assert message.body == b"not json"
    finally:
        await bus.stop()


async def test_publishing_waits_for_the_topology(bus_names: BusNames) -> None:
    bus = bus_for(bus_names)
    launched = new_event_type()
    with pytest.raises(ConnectionError):
        await bus.publish(Envelope.wrap(launched(name="too early"), producer="t"))
    assert not await bus.ping()
    await bus.start()
    try:
        assert await bus.ping()
    finally:
        await bus.stop()
    assert not await bus.ping()


async def test_a_broker_set_up_from_the_definitions_file_accepts_the_services_declarations(
    bus_names: BusNames,
) -> None:
    """No PRECONDITION_FAILED: the queues the definitions create are the ones a service wants."""
    document = definitions(
        exchange=bus_names.exchange, prefix=bus_names.queue_prefix, published=EVENTS
    )
    connection = await aio_pika.connect(bus_names.url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            bus_names.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        for queue in document["queues"]:
            await channel.declare_queue(queue["name"], durable=True, arguments=queue["arguments"])
        for binding in document["bindings"]:
            queue = await channel.get_queue(binding["destination"])
            await queue.bind(exchange, binding["routing_key"])
    finally:
        await connection.close()
    bus = bus_for(bus_names)
    bus.subscribe("orders", {t: _ignore for t in CONSUMERS["orders"]})
    await bus.start()
    try:
        assert await bus.ping()
    finally:
        await bus.stop()


async def _ignore(envelope: Envelope) -> None:
    return None


async def test_a_queue_left_by_an_older_deployment_stops_the_start_with_a_clear_error(
    bus_names: BusNames,
) -> None:
    connection = await aio_pika.connect(bus_names.url)
    try:
        channel = await connection.channel()
        await channel.declare_queue(f"{bus_names.queue_prefix}.orders", durable=True)  # classic
    finally:
        await connection.close()
    bus = bus_for(bus_names)
    with capture_logs() as logs, pytest.raises(QueueMismatch):
        await bus.start()
    assert [e["queue"] for e in logs if e["event"] == "bus.queue_mismatch"] == [
        f"{bus_names.queue_prefix}.orders"
    ]
    assert not await bus.ping()


async def test_consuming_and_publishing_resume_after_the_connection_was_cut(
    bus_names: BusNames,
) -> None:
    launched = new_event_type()
    port = free_port()
    proxied = RabbitBus(
        bus_names.url.replace(":5672", f":{port}"),
        exchange=bus_names.exchange,
        queue_prefix=bus_names.queue_prefix,
    )
    direct = bus_for(bus_names)
    handled: list[str] = []

    async def handle(envelope: Envelope) -> None:
        handled.append(envelope.payload["name"])

    proxied.subscribe("consumer", {launched.event_type: handle})

    def handled_are(*names: str):  # type: ignore[no-untyped-def]
        async def check() -> bool:
            return set(handled) == set(names)  # a publish retried over the cut may repeat

        return check

    try:
        async with tcp_proxy(port, 5672):
            await proxied.start()
            await proxied.publish(Envelope.wrap(launched(name="before"), producer="t"))
            await eventually(handled_are("before"))
        # Cut: published meanwhile by another process, it waits in the durable queue.
        await direct.start()
        await direct.publish(Envelope.wrap(launched(name="during"), producer="t"))
        async with tcp_proxy(port, 5672):
            await eventually(handled_are("before", "during"))

            async def publishes() -> bool:
                try:
                    await proxied.publish(Envelope.wrap(launched(name="after"), producer="t"))
                except Exception:
                    return False
                return True

            await eventually(publishes)
            await eventually(handled_are("before", "during", "after"))
    finally:
        await direct.stop()
        await proxied.stop()


async def test_a_message_redelivered_past_the_delivery_limit_is_dead_lettered(
    bus_names: BusNames,
) -> None:
    """A consumer that dies holding the same message again and again (simulated by requeueing
    it) does not loop forever: the quorum queue dead-letters it to the DLQ."""
    launched = new_event_type()
    bus = bus_for(bus_names)
    await bus.start()
    try:
        await bus.declare_consumer_queues("consumer", [launched.event_type])
        envelope = Envelope.wrap(launched(name="crash loop"), producer="t")
        await bus.publish(envelope)
    finally:
        await bus.stop()
    connection = await aio_pika.connect(bus_names.url)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(f"{bus_names.queue_prefix}.consumer")
        deliveries = 0
        for _ in range(DELIVERY_LIMIT + 5):
            message = await queue.get(no_ack=False, fail=False, timeout=5)
            if message is None:
                break
            deliveries += 1
            await message.nack(requeue=True)
    finally:
        await connection.close()
    assert deliveries == DELIVERY_LIMIT + 1
    found: list[aio_pika.abc.AbstractMessage] = []

    async def dead_lettered() -> bool:  # the broker moves it in the background
        found.extend(await dead_letters(bus_names, "consumer"))
        return bool(found)

    await eventually(dead_lettered)
    assert [Envelope.from_bytes(m.body).event_id for m in found] == [envelope.event_id]


async def test_a_full_unclaimed_archive_drops_its_oldest_and_never_refuses_a_publish(
    bus_names: BusNames,
) -> None:
    # The archive's own arguments, with room for 3 instead of 100,000: a refused publish would
    # leave the producer's outbox stuck on an event no store service needs (ADR 010).
    spec = unclaimed_queue(bus_names.queue_prefix, ["probe.archive.kept.v1"])
    small = dataclasses.replace(spec, arguments={**spec.arguments, "x-max-length": 3})
    connection = await aio_pika.connect(bus_names.url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            bus_names.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(small.name, durable=True, arguments=small.arguments)
        await queue.bind(exchange, routing_key="probe.archive.kept.v1")
        for n in range(1, 6):
            # Raises on a negative confirm, as `reject-publish` answers a full queue.
            await exchange.publish(
                aio_pika.Message(str(n).encode()),
                routing_key="probe.archive.kept.v1",
                mandatory=True,
            )
        kept = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            kept.append(message.body.decode())
        assert kept == ["3", "4", "5"]
    finally:
        await connection.close()
