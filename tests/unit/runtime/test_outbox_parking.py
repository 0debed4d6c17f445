"""An outbox row the broker keeps refusing is parked; the rest of the stream goes on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.contracts.envelope import Envelope
from libs.contracts.events import AnonymousMerged
from libs.runtime.db import create_engine, new_metadata, session_factory
from libs.runtime.outbox import (
    OutboxRelay,
    outbox_table,
    parked_rows,
    record_event,
    release_parked,
)

PARK_AFTER = 3


class Broker:
    """Accepts every event but those of refused users; can be taken away."""

    def __init__(self) -> None:
        self.up = True
        self.refused: set[str] = set()
        self.received: list[str] = []

    async def publish(self, envelope: Envelope, *, ordering_key: str | None = None) -> None:
        user = envelope.payload["user_id"]
        if not self.up:
            raise ConnectionError("broker away")
        if user in self.refused:
            raise RuntimeError(f"unroutable: {user}")
        self.received.append(user)

    async def ping(self) -> bool:
        return self.up or self.says_up_while_away

    says_up_while_away = False  # a robust connection reconnecting may still say "up"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncEngine:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}")
    yield engine
    await engine.dispose()


@pytest.fixture
def outbox():
    return outbox_table(new_metadata())


async def record(engine: AsyncEngine, outbox, *users: str, key: str | None = None) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(outbox.metadata.create_all)
    async with session_factory(engine)() as session, session.begin():
        for user in users:
            event = AnonymousMerged(anonymous_id="a", user_id=user)
            await record_event(session, outbox, event, producer="probe", ordering_key=key)


def relay(engine: AsyncEngine, outbox, broker: Broker) -> OutboxRelay:
    return OutboxRelay(
        engine=engine,
        outbox=outbox,
        publish=broker.publish,
        name="probe",
        broker_up=broker.ping,
        park_after=PARK_AFTER,
    )


async def rounds(relay: OutboxRelay, n: int) -> None:
    for _ in range(n):
        await relay.drain(raise_errors=False)


async def test_a_refused_row_is_parked_and_the_stream_goes_on(engine, outbox) -> None:
    broker = Broker()
    broker.refused.add("bad")
    await record(engine, outbox, "u1", "bad", "u2")
    the_relay = relay(engine, outbox, broker)

    await rounds(the_relay, PARK_AFTER + 2)

    assert broker.received == ["u1", "u2"]
    [parked] = await parked_rows(session_factory(engine), outbox)
    assert (parked.attempts, parked.type) == (PARK_AFTER, "identity.anonymous.merged.v1")
    assert "unroutable: bad" in (parked.last_error or "")

    await rounds(the_relay, 2)  # a parked row is not tried again
    assert broker.received == ["u1", "u2"]

    broker.refused.clear()
    assert await release_parked(session_factory(engine), outbox) == 1
    await rounds(the_relay, 1)
    assert broker.received == ["u1", "u2", "bad"]
    assert await parked_rows(session_factory(engine), outbox) == []


async def test_no_row_is_parked_while_the_broker_is_away(engine, outbox) -> None:
    broker = Broker()
    broker.up = False
    await record(engine, outbox, "u1", "u2")
    the_relay = relay(engine, outbox, broker)

    await rounds(the_relay, PARK_AFTER * 3)

    assert await parked_rows(session_factory(engine), outbox) == []
    async with engine.connect() as connection:
        attempts = (await connection.execute(select(outbox.c.attempts))).scalars().all()
    assert attempts == [0, 0]
    broker.up = True
    await rounds(the_relay, 1)
    assert broker.received == ["u1", "u2"]


async def test_no_row_is_parked_when_the_connection_fails_though_the_bus_says_up(
    engine, outbox
) -> None:
    broker = Broker()
    broker.up, broker.says_up_while_away = False, True
    await record(engine, outbox, "u1", "u2")
    the_relay = relay(engine, outbox, broker)

    await rounds(the_relay, PARK_AFTER * 3)

    assert await parked_rows(session_factory(engine), outbox) == []
    broker.up = True
    await rounds(the_relay, 1)
    assert broker.received == ["u1", "u2"]


async def test_rows_of_a_parked_rows_aggregate_wait_behind_it(engine, outbox) -> None:
    broker = Broker()
    broker.refused.add("o1-created")
    await record(engine, outbox, "o1-created", "o1-paid", key="order:1")
    await record(engine, outbox, "o2-created", "o2-paid", key="order:2")
    the_relay = relay(engine, outbox, broker)

    await rounds(the_relay, PARK_AFTER + 2)

    assert broker.received == ["o2-created", "o2-paid"]  # order 1's paid never overtakes
    broker.refused.clear()
    await release_parked(session_factory(engine), outbox)
    await rounds(the_relay, 1)
    assert broker.received == ["o2-created", "o2-paid", "o1-created", "o1-paid"]


def test_store_outbox_lists_and_releases_a_services_parked_rows(tmp_path: Path, monkeypatch):
    import asyncio

    from typer.testing import CliRunner

    from cli.main import app
    from libs.runtime.settings import RuntimeSettings

    monkeypatch.setenv("STORE_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    assert runner.invoke(app, ["migrate", "cart"]).exit_code == 0
    outbox = outbox_table(new_metadata())

    async def park_one() -> list:
        engine = create_engine(RuntimeSettings().sqlite_url("cart"))
        try:
            broker = Broker()
            broker.refused.add("bad")
            await record(engine, outbox, "bad")
            await rounds(relay(engine, outbox, broker), PARK_AFTER)
            return await parked_rows(session_factory(engine), outbox)
        finally:
            await engine.dispose()

    [parked] = asyncio.run(park_one())
    listed = runner.invoke(app, ["outbox", "list", "cart"])
    assert listed.exit_code == 0
    assert f"cart\t{parked.id}\t{parked.event_id}\tidentity.anonymous.merged.v1\t3" in listed.stdout

    assert runner.invoke(app, ["outbox", "retry", "cart"]).exit_code == 0

    async def still_parked() -> list:
        engine = create_engine(RuntimeSettings().sqlite_url("cart"))
        try:
            return await parked_rows(session_factory(engine), outbox)
        finally:
            await engine.dispose()

    assert asyncio.run(still_parked()) == []


class SlowBroker(Broker):
    """Takes a while to confirm each event, so publishes of one batch overlap."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight: dict[str | None, int] = {}
        self.most_in_flight = 0
        self.most_in_flight_per_key = 0

    async def publish(self, envelope: Envelope, *, ordering_key: str | None = None) -> None:
        self.in_flight[ordering_key] = self.in_flight.get(ordering_key, 0) + 1
        self.most_in_flight = max(self.most_in_flight, sum(self.in_flight.values()))
        if ordering_key is not None:
            self.most_in_flight_per_key = max(
                self.most_in_flight_per_key, self.in_flight[ordering_key]
            )
        await asyncio.sleep(0.01)
        self.in_flight[ordering_key] -= 1
        await super().publish(envelope, ordering_key=ordering_key)


async def test_a_batch_is_published_at_once_but_one_key_in_order(engine, outbox) -> None:
    broker = SlowBroker()
    await record(engine, outbox, "a1", "a2", "a3", key="order:a")
    await record(engine, outbox, "b1", "b2", "b3", key="order:b")
    await record(engine, outbox, "x", "y")

    assert await relay(engine, outbox, broker).drain() == 8

    assert [u for u in broker.received if u.startswith("a")] == ["a1", "a2", "a3"]
    assert [u for u in broker.received if u.startswith("b")] == ["b1", "b2", "b3"]
    assert sorted(broker.received) == ["a1", "a2", "a3", "b1", "b2", "b3", "x", "y"]
    assert broker.most_in_flight_per_key == 1  # the next of a key waits for its confirm
    assert broker.most_in_flight > 1  # the keys and the unkeyed rows went side by side


async def test_a_refused_row_holds_back_its_key_only(engine, outbox) -> None:
    broker = SlowBroker()
    broker.refused.add("a2")
    await record(engine, outbox, "a1", "a2", "a3", key="order:a")
    await record(engine, outbox, "b1", "b2", key="order:b")

    await relay(engine, outbox, broker).drain(raise_errors=False)

    assert sorted(broker.received) == ["a1", "b1", "b2"]  # a3 waits behind a2
