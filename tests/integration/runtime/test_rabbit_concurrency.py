"""A consumer on RabbitMQ handles many deliveries at once, on a real broker: one aggregate's
events (the same ordering key) one after another and in order, other aggregates meanwhile; a
failing delivery still climbs the retry ladder to the dead-letter queue without holding its
aggregate back; and nothing is acknowledged before its handler returned."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict
from typing import ClassVar

import aio_pika
import anyio
import pytest

from libs.contracts.envelope import Envelope, Event
from libs.contracts.topology import dead_letter_queue_name
from libs.runtime.delivery import RetryPolicy
from libs.runtime.rabbit import RabbitBus
from tests.conftest import BusNames
from tests.integration.runtime.support import eventually, tcp_proxy
from tests.support.cluster import free_port

pytestmark = pytest.mark.integration


def new_event_type() -> type[Event]:
    letters = "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:10])

    class Stepped(Event):
        event_type: ClassVar[str] = f"probe.walker{letters}.stepped.v1"
        walker: str
        step: int

    return Stepped


def bus_for(names: BusNames, url: str | None = None, **kwargs) -> RabbitBus:  # type: ignore[no-untyped-def]
    return RabbitBus(
        url or names.url, exchange=names.exchange, queue_prefix=names.queue_prefix, **kwargs
    )


async def test_one_aggregates_events_are_handled_in_order_while_others_run_at_once(
    bus_names: BusNames,
) -> None:
    stepped = new_event_type()
    bus = bus_for(bus_names, concurrency=16)
    seen: dict[str, list[int]] = defaultdict(list)
    running: Counter[str] = Counter()
    most_at_once_per_walker = 0
    most_at_once = 0

    async def handle(envelope: Envelope) -> None:
        nonlocal most_at_once_per_walker, most_at_once
        walker, step = envelope.payload["walker"], envelope.payload["step"]
        running[walker] += 1
        most_at_once_per_walker = max(most_at_once_per_walker, running[walker])
        most_at_once = max(most_at_once, sum(running.values()))
        # Later steps finish sooner: without the lane they would overtake earlier ones.
        await asyncio.sleep(0.02 if step % 2 == 0 else 0.001)
        seen[walker].append(step)
        running[walker] -= 1

    bus.subscribe("consumer", {stepped.event_type: handle})
    await bus.start()
    walkers = ["ann", "bob", "cid", "dan"]
    steps = 30
    try:
        for step in range(steps):
            for walker in walkers:
                await bus.publish(
                    Envelope.wrap(stepped(walker=walker, step=step), producer="t"),
                    ordering_key=f"walker:{walker}",
                )

        async def all_handled() -> bool:
            return sum(len(handled) for handled in seen.values()) == steps * len(walkers)

        await eventually(all_handled)
        assert {walker: seen[walker] for walker in walkers} == {
            walker: list(range(steps)) for walker in walkers
        }
        assert most_at_once_per_walker == 1
        assert most_at_once > 1  # the walkers were handled side by side
    finally:
        await bus.stop()


async def test_a_delivery_reaches_its_lane_without_a_worker_thread(
    bus_names: BusNames, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker threads finish in any order: a delivery that passed through one on its way to its
    lane could overtake the delivery before it. So nothing between the broker and the lane may
    run in one (the order test above catches the overtaking only when the threads race)."""
    stepped = new_event_type()
    bus = bus_for(bus_names, concurrency=8)
    handled: list[int] = []

    async def handle(envelope: Envelope) -> None:
        handled.append(envelope.payload["step"])

    bus.subscribe("consumer", {stepped.event_type: handle})
    await bus.start()
    threaded: list[str] = []
    run_sync = anyio.to_thread.run_sync

    async def recording_run_sync(func, *args, **kwargs):  # type: ignore[no-untyped-def]
        threaded.append(getattr(func, "__qualname__", repr(func)))
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", recording_run_sync)
    try:
        for step in range(5):
            await bus.publish(
                Envelope.wrap(stepped(walker="ann", step=step), producer="t"),
                ordering_key="walker:ann",
            )

        async def all_handled() -> bool:
            return len(handled) == 5

        await eventually(all_handled)
        assert handled == [0, 1, 2, 3, 4]
        assert threaded == []
    finally:
        await bus.stop()


async def test_events_without_a_key_are_handled_at_once_up_to_the_concurrency(
    bus_names: BusNames,
) -> None:
    stepped = new_event_type()
    bus = bus_for(bus_names, concurrency=4)
    release = asyncio.Event()
    running = 0
    most_at_once = 0
    handled = 0

    async def handle(envelope: Envelope) -> None:
        nonlocal running, most_at_once, handled
        running += 1
        most_at_once = max(most_at_once, running)
        await release.wait()
        running -= 1
        handled += 1

    bus.subscribe("consumer", {stepped.event_type: handle})
    await bus.start()
    try:
        for step in range(10):
            await bus.publish(Envelope.wrap(stepped(walker=f"w{step}", step=step), producer="t"))

        async def four_running() -> bool:
            return running == 4

        await eventually(four_running)
        await asyncio.sleep(0.2)  # a fifth would have started by now if the bound leaked
        assert most_at_once == 4
        release.set()

        async def all_handled() -> bool:
            return handled == 10

        await eventually(all_handled)
    finally:
        release.set()
        await bus.stop()


async def test_a_failing_delivery_is_retried_then_dead_lettered_and_its_lane_goes_on(
    bus_names: BusNames,
) -> None:
    stepped = new_event_type()
    bus = bus_for(bus_names, retry=RetryPolicy(ladder_ms=(20, 50), budget_ms=100))
    attempts: Counter[int] = Counter()
    handled: list[int] = []

    async def handle(envelope: Envelope) -> None:
        step = envelope.payload["step"]
        attempts[step] += 1
        if step == 0:
            raise ValueError("poison step")
        handled.append(step)

    bus.subscribe("consumer", {stepped.event_type: handle})
    await bus.start()
    try:
        for step in range(3):
            await bus.publish(
                Envelope.wrap(stepped(walker="ann", step=step), producer="t"),
                ordering_key="walker:ann",
            )

        async def later_steps_handled() -> bool:
            return sorted(handled) == [1, 2]

        await eventually(later_steps_handled)

        connection = await aio_pika.connect(bus_names.url)
        try:
            channel = await connection.channel()
            dlq = await channel.get_queue(
                dead_letter_queue_name(bus_names.queue_prefix, "consumer")
            )
            parked: list[aio_pika.abc.AbstractIncomingMessage] = []

            async def dead_lettered() -> bool:
                if (message := await dlq.get(no_ack=True, fail=False)) is not None:
                    parked.append(message)
                return bool(parked)

            await eventually(dead_lettered)
        finally:
            await connection.close()
        (message,) = parked
        assert Envelope.from_bytes(message.body).payload["step"] == 0
        # The key travels with the parked copy, so a replay stays in its aggregate's lane.
        assert message.headers["x-store-ordering-key"] == "walker:ann"
        assert attempts[0] == 4  # 20 + 50 + 50 ms spent the budget: three retries
    finally:
        await bus.stop()


async def test_deliveries_in_progress_are_not_acknowledged_and_come_back_after_a_cut(
    bus_names: BusNames,
) -> None:
    """Handlers still running when the connection drops have acknowledged nothing: the broker
    gives their deliveries to the next consumer."""
    stepped = new_event_type()
    port = free_port()
    proxied = bus_for(bus_names, bus_names.url.replace(":5672", f":{port}"), concurrency=8)
    direct = bus_for(bus_names)
    release = asyncio.Event()
    started: list[int] = []
    handled_later: list[int] = []

    async def stuck(envelope: Envelope) -> None:
        started.append(envelope.payload["step"])
        await release.wait()

    async def handle(envelope: Envelope) -> None:
        handled_later.append(envelope.payload["step"])

    proxied.subscribe("consumer", {stepped.event_type: stuck})
    direct.subscribe("consumer", {stepped.event_type: handle})
    try:
        async with tcp_proxy(port, 5672):
            await proxied.start()
            for step in range(5):
                await proxied.publish(
                    Envelope.wrap(stepped(walker=f"w{step}", step=step), producer="t")
                )

            async def all_started() -> bool:
                return sorted(started) == list(range(5))

            await eventually(all_started)
        # The connection is cut while the five handlers are still running.
        await direct.start()

        async def redelivered() -> bool:
            return sorted(set(handled_later)) == list(range(5))

        await eventually(redelivered)
    finally:
        release.set()
        await direct.stop()
        await proxied.stop()
