"""The outbox relay and consumers over real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

import aio_pika
import pytest

from libs.contracts.envelope import Envelope
from libs.contracts.events import AnonymousMerged
from libs.runtime.delivery import RetryPolicy
from libs.runtime.observability import metrics
from libs.runtime.rabbit import RabbitBus
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


async def test_relay_delivers_after_the_broker_was_unreachable(
    pg_database_url: str, bus_names: BusNames, tmp_path: Path
) -> None:
    port = free_port()
    # The proxy listens on loopback; the broker may be a testcontainers one, on any port.
    broker = urlsplit(bus_names.url)
    broker_port = broker.port or 5672
    amqp = broker._replace(netloc=f"{broker.username}:{broker.password}@127.0.0.1:{port}").geturl()
    bus = RabbitBus(amqp, exchange=bus_names.exchange, queue_prefix=bus_names.queue_prefix)
    runtime, seen = probe_runtime(pg_database_url, bus, tmp_path)

    async def on_merged(_service, session, payload: AnonymousMerged) -> None:  # type: ignore[no-untyped-def]
        await session.execute(seen.insert().values(user_id=payload.user_id))

    runtime.subscribe(None, {AnonymousMerged: on_merged})
    await create_tables(runtime)
    await runtime.start()  # the broker is unreachable: nothing listens on `port` yet
    try:
        async with runtime.transaction() as session:
            for n in range(3):
                await runtime.record(session, AnonymousMerged(anonymous_id="a", user_id=f"u{n}"))
        await asyncio.sleep(1.0)
        assert await pending(runtime) == 3, "kept in the outbox while the broker is away"
        async with tcp_proxy(port, broker_port):
            await eventually(lambda: _equals(rows(runtime, seen), ["u0", "u1", "u2"]))
            assert await pending(runtime) == 0
    finally:
        await runtime.stop()


async def _equals(awaitable, expected) -> bool:  # type: ignore[no-untyped-def]
    return sorted(await awaitable) == expected


async def test_duplicate_delivery_is_handled_once(
    pg_database_url: str, bus_names: BusNames, tmp_path: Path
) -> None:
    bus = RabbitBus(bus_names.url, exchange=bus_names.exchange, queue_prefix=bus_names.queue_prefix)
    runtime, seen = probe_runtime(pg_database_url, bus, tmp_path)

    async def on_merged(_service, session, payload: AnonymousMerged) -> None:  # type: ignore[no-untyped-def]
        await session.execute(seen.insert().values(user_id=payload.user_id))

    runtime.subscribe(None, {AnonymousMerged: on_merged})
    await create_tables(runtime)
    await runtime.start()
    try:
        await eventually(bus.ping)
        before = _consumed("probe", AnonymousMerged.event_type)
        envelope = Envelope.wrap(AnonymousMerged(anonymous_id="a", user_id="once"), producer="t")
        await asyncio.gather(*(bus.publish(envelope) for _ in range(3)))
        other = Envelope.wrap(AnonymousMerged(anonymous_id="b", user_id="marker"), producer="t")
        await bus.publish(other)

        # All four deliveries done (a duplicate is done once the inbox turned it away), not
        # the marker and a pause: deliveries are handled concurrently, so a copy of "once"
        # may finish after the marker, later than any pause under load.
        async def all_delivered() -> bool:
            return _consumed("probe", AnonymousMerged.event_type) - before >= 4

        await eventually(all_delivered)
        assert sorted(await rows(runtime, seen)) == ["marker", "once"]
    finally:
        await runtime.stop()


def _consumed(consumer: str, event_type: str) -> float:
    return metrics.events_consumed.labels(consumer=consumer, type=event_type)._value.get()


async def test_poison_message_ends_in_the_dead_letter_queue(
    pg_database_url: str, bus_names: BusNames, tmp_path: Path
) -> None:
    bus = RabbitBus(
        bus_names.url,
        exchange=bus_names.exchange,
        queue_prefix=bus_names.queue_prefix,
        retry=RetryPolicy(ladder_ms=(20,), budget_ms=60),  # 3 retries
    )
    runtime, _ = probe_runtime(pg_database_url, bus, tmp_path)
    attempts: list[str] = []

    async def always_fails(_service, session, payload: AnonymousMerged) -> None:  # type: ignore[no-untyped-def]
        attempts.append(payload.user_id)
        raise ValueError("cannot handle this")

    runtime.subscribe(None, {AnonymousMerged: always_fails})
    await create_tables(runtime)
    await runtime.start()
    try:
        await eventually(bus.ping)
        envelope = Envelope.wrap(AnonymousMerged(anonymous_id="a", user_id="poison"), producer="t")
        await bus.publish(envelope)
        connection = await aio_pika.connect(bus_names.url)
        try:
            channel = await connection.channel()
            dlq = await channel.get_queue(f"{bus_names.queue_prefix}.probe.dlq")
            message = None
            for _ in range(200):
                message = await dlq.get(no_ack=True, fail=False)
                if message is not None:
                    break
                await asyncio.sleep(0.05)
            assert message is not None, "the poison message never reached the dead-letter queue"
            assert Envelope.from_bytes(message.body).event_id == envelope.event_id
            assert message.headers["x-store-attempt"] == 3
            assert "cannot handle this" in str(message.headers["x-store-last-error"])
        finally:
            await connection.close()
        assert len(attempts) == 4  # the first delivery and 3 retries, then no more
        await asyncio.sleep(0.3)
        assert len(attempts) == 4
    finally:
        await runtime.stop()
