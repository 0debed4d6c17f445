"""The outbox, the idempotent inbox and the in-process bus, on SQLite."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, String, Table, func, select

from libs.contracts.envelope import Envelope
from libs.contracts.events import AnonymousMerged
from libs.runtime.bus import InProcessBus, RetryPolicy
from libs.runtime.db import new_metadata
from libs.runtime.runtime import Runtime, Shared
from libs.runtime.settings import RuntimeSettings


def make_runtime(tmp_path: Path, name: str, shared: Shared) -> tuple[Runtime, Table]:
    metadata = new_metadata()
    notes = Table(
        "notes", metadata, Column("id", Integer, primary_key=True), Column("text", String(50))
    )
    settings = RuntimeSettings(data_dir=tmp_path, outbox_poll_interval_ms=20)
    runtime = Runtime(
        name=name,
        settings=settings,
        metadata=metadata,
        database_url=settings.sqlite_url(name),
        migrations_dir=tmp_path,
        shared=shared,
    )
    return runtime, notes


async def start(runtime: Runtime) -> None:
    async with runtime.engine.begin() as connection:
        await connection.run_sync(runtime.metadata.create_all)
    await runtime.start()


@pytest.fixture
def shared() -> Shared:
    import fakeredis

    from libs.runtime.http import ServiceDirectory

    return Shared(
        bus=InProcessBus(RetryPolicy(ladder_ms=(5,), budget_ms=10)),
        fake_redis_server=fakeredis.FakeServer(),
        directory=ServiceDirectory(urls={}, timeout_s=1, service_token="t"),
    )


async def count(runtime: Runtime, table: Table) -> int:
    async with runtime.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(table))).scalar_one())


async def test_event_committed_with_change_is_delivered_once(
    tmp_path: Path, shared: Shared
) -> None:
    producer, notes = make_runtime(tmp_path, "producer", shared)
    consumer, seen = make_runtime(tmp_path, "consumer", shared)

    async def on_merged(_service, session, payload: AnonymousMerged) -> None:
        await session.execute(seen.insert().values(text=payload.user_id))

    consumer.subscribe(None, {AnonymousMerged: on_merged})
    await start(producer)
    await start(consumer)
    try:
        async with producer.transaction() as session:
            await session.execute(notes.insert().values(text="changed"))
            envelope = await producer.record(
                session, AnonymousMerged(anonymous_id="a", user_id="u")
            )
        await asyncio.sleep(0.2)
        await shared.bus.idle()  # type: ignore[attr-defined]
        assert await count(consumer, seen) == 1

        # The broker delivers the same event again: the inbox remembers it.
        await shared.bus.publish(envelope)
        await shared.bus.idle()  # type: ignore[attr-defined]
        assert await count(consumer, seen) == 1
    finally:
        await producer.stop()
        await consumer.stop()


async def test_rolled_back_change_publishes_nothing(tmp_path: Path, shared: Shared) -> None:
    producer, notes = make_runtime(tmp_path, "producer", shared)
    await start(producer)
    try:
        with pytest.raises(RuntimeError):
            async with producer.transaction() as session:
                await session.execute(notes.insert().values(text="changed"))
                await producer.record(session, AnonymousMerged(anonymous_id="a", user_id="u"))
                raise RuntimeError("boom")
        assert await count(producer, producer.outbox) == 0
        assert await count(producer, notes) == 0
    finally:
        await producer.stop()


async def test_failing_handler_is_retried_then_dead_lettered(
    tmp_path: Path, shared: Shared
) -> None:
    consumer, _ = make_runtime(tmp_path, "consumer", shared)
    calls: list[str] = []

    async def always_fails(_service, session, payload: AnonymousMerged) -> None:
        calls.append(payload.user_id)
        raise ValueError("poison")

    consumer.subscribe(None, {AnonymousMerged: always_fails})
    await start(consumer)
    try:
        envelope = Envelope.wrap(AnonymousMerged(anonymous_id="a", user_id="u"), producer="t")
        await shared.bus.publish(envelope)
        await shared.bus.idle()  # type: ignore[attr-defined]
        assert len(calls) == 3  # first delivery + 2 retries
        dead = shared.bus.dead_letters  # type: ignore[attr-defined]
        assert [d.envelope.event_id for d in dead] == [envelope.event_id]
        # A failed handler's transaction rolled back: the event is not marked handled.
        assert await count(consumer, consumer.inbox) == 0
    finally:
        await consumer.stop()


async def test_relay_keeps_events_until_the_bus_accepts_them(
    tmp_path: Path, shared: Shared
) -> None:
    producer, _notes = make_runtime(tmp_path, "producer", shared)
    published: list[Envelope] = []
    down = True

    async def flaky_publish(envelope: Envelope, *, ordering_key: str | None = None) -> None:
        if down:
            raise ConnectionError("broker unreachable")
        published.append(envelope)

    producer.relay._publish = flaky_publish
    await start(producer)
    try:
        async with producer.transaction() as session:
            await producer.record(session, AnonymousMerged(anonymous_id="a", user_id="1"))
            await producer.record(session, AnonymousMerged(anonymous_id="a", user_id="2"))
        await asyncio.sleep(0.1)
        assert published == []
        down = False
        for _ in range(50):
            if len(published) == 2:
                break
            await asyncio.sleep(0.02)
        assert [e.payload["user_id"] for e in published] == ["1", "2"]
    finally:
        await producer.stop()


async def test_a_handler_sees_the_event_it_handles_and_its_own_error_is_kept(
    tmp_path: Path, shared: Shared
) -> None:
    from libs.runtime.runtime import delivering

    consumer, _ = make_runtime(tmp_path, "consumer", shared)
    seen: list[object] = []

    async def fails_after_looking(_service, session, payload: AnonymousMerged) -> None:
        seen.append(delivering().event_id)
        raise ValueError("poison")

    consumer.subscribe(None, {AnonymousMerged: fails_after_looking})
    await start(consumer)
    try:
        envelope = Envelope.wrap(AnonymousMerged(anonymous_id="a", user_id="u"), producer="t")
        await shared.bus.publish(envelope)
        await shared.bus.idle()  # type: ignore[attr-defined]
        assert seen == [envelope.event_id] * 3
        (dead,) = shared.bus.dead_letters  # type: ignore[attr-defined]
        assert "ValueError('poison')" in dead.error
        with pytest.raises(RuntimeError, match="no event is being handled"):
            delivering()
    finally:
        await consumer.stop()
