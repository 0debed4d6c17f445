"""The outbox relay and consumers over real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import aio_pika
import pytest
from sqlalchemy import Column, Integer, String, Table, func, select

from libs.contracts.envelope import Envelope
from libs.contracts.events import AnonymousMerged
from libs.runtime.bus import RabbitBus, RetryPolicy
from libs.runtime.db import new_metadata
from libs.runtime.http import ServiceDirectory
from libs.runtime.runtime import Runtime, Shared
from libs.runtime.settings import RuntimeSettings
from tests.conftest import BusNames
from tests.support.cluster import free_port

pytestmark = pytest.mark.integration


def probe_runtime(database_url: str, bus: RabbitBus, tmp_path: Path) -> tuple[Runtime, Table]:
    import fakeredis

    metadata = new_metadata()
    seen = Table(
        "seen", metadata, Column("id", Integer, primary_key=True), Column("user_id", String(50))
    )
    runtime = Runtime(
        name="probe",
        settings=RuntimeSettings(data_dir=tmp_path, outbox_poll_interval_ms=50),
        metadata=metadata,
        database_url=database_url,
        migrations_dir=tmp_path,
        shared=Shared(
            bus=bus,
            fake_redis_server=fakeredis.FakeServer(),
            directory=ServiceDirectory(urls={}, timeout_s=1, service_token="t"),
        ),
    )
    return runtime, seen


async def create_tables(runtime: Runtime) -> None:
    async with runtime.engine.begin() as connection:
        await connection.run_sync(runtime.metadata.create_all)


async def rows(runtime: Runtime, table: Table) -> list[str]:
    async with runtime.sessions() as session:
        result = await session.execute(select(table.c.user_id).order_by(table.c.id))
        return list(result.scalars())


async def pending(runtime: Runtime) -> int:
    async with runtime.sessions() as session:
        query = select(func.count()).where(runtime.outbox.c.published_at.is_(None))
        return int((await session.execute(query)).scalar_one())


async def eventually(check, within_s: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        if await check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def tcp_proxy(listen_port: int, target_port: int) -> AsyncIterator[None]:
    """Forward a local port to RabbitMQ: the broker 'comes back' when this starts."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    try:
        yield
    finally:
        server.close()


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

    async def on_merged(session, payload: AnonymousMerged) -> None:  # type: ignore[no-untyped-def]
        await session.execute(seen.insert().values(user_id=payload.user_id))

    runtime.subscribe({AnonymousMerged: on_merged})
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

    async def on_merged(session, payload: AnonymousMerged) -> None:  # type: ignore[no-untyped-def]
        await session.execute(seen.insert().values(user_id=payload.user_id))

    runtime.subscribe({AnonymousMerged: on_merged})
    await create_tables(runtime)
    await runtime.start()
    try:
        await eventually(bus.ping)
        envelope = Envelope.wrap(AnonymousMerged(anonymous_id="a", user_id="once"), producer="t")
        await asyncio.gather(*(bus.publish(envelope) for _ in range(3)))
        other = Envelope.wrap(AnonymousMerged(anonymous_id="b", user_id="marker"), producer="t")
        await bus.publish(other)
        await eventually(lambda: _contains(rows(runtime, seen), "marker"))
        await asyncio.sleep(0.3)
        assert sorted(await rows(runtime, seen)) == ["marker", "once"]
    finally:
        await runtime.stop()


async def _contains(awaitable, item) -> bool:  # type: ignore[no-untyped-def]
    return item in await awaitable


async def test_poison_message_ends_in_the_dead_letter_queue(
    pg_database_url: str, bus_names: BusNames, tmp_path: Path
) -> None:
    bus = RabbitBus(
        bus_names.url,
        exchange=bus_names.exchange,
        queue_prefix=bus_names.queue_prefix,
        retry=RetryPolicy(max_retries=3, first_delay_ms=20),
    )
    runtime, _ = probe_runtime(pg_database_url, bus, tmp_path)
    attempts: list[str] = []

    async def always_fails(session, payload: AnonymousMerged) -> None:  # type: ignore[no-untyped-def]
        attempts.append(payload.user_id)
        raise ValueError("cannot handle this")

    runtime.subscribe({AnonymousMerged: always_fails})
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
