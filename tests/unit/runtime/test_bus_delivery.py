"""Retry ladder and budget, and the one-line report of every event not handled."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import pytest
from structlog.testing import capture_logs

from libs.contracts.envelope import Envelope, Event
from libs.contracts.events import AnonymousMerged
from libs.runtime.bus import InProcessBus, UnroutableEvent
from libs.runtime.delivery import RetryPolicy, delivery_metrics, dispatch
from libs.runtime.observability import metrics


def merged() -> Envelope:
    return Envelope.wrap(AnonymousMerged(anonymous_id="a", user_id="u"), producer="t")


def test_the_default_budget_outlasts_a_database_restart_of_several_minutes() -> None:
    policy = RetryPolicy()
    delays = []
    while (delay := policy.delay_ms(len(delays) + 1)) is not None:
        delays.append(delay)
    assert delays[:4] == [1_000, 5_000, 15_000, 30_000]  # climbs the ladder ...
    assert set(delays[4:]) == {30_000}  # ... then repeats its top rung
    assert sum(delays) >= 3_600_000 > sum(delays[:-1])  # until an hour is spent


def test_a_message_waits_at_most_thirty_seconds_once_an_outage_is_over() -> None:
    # Whenever the cause of the failures ends, the next retry is at most one top rung away.
    policy = RetryPolicy()
    attempt = 1
    while (delay := policy.delay_ms(attempt)) is not None:
        assert delay <= 30_000
        attempt += 1


def test_a_short_budget_dead_letters_after_the_retries_it_pays_for() -> None:
    policy = RetryPolicy(ladder_ms=(50, 20), budget_ms=100)
    assert [policy.delay_ms(n) for n in (1, 2, 3, 4)] == [20, 50, 50, None]


def test_a_ladder_needs_a_positive_delay() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(ladder_ms=())


async def test_an_unknown_type_is_acknowledged_with_one_line_and_a_count() -> None:
    envelope = merged()
    counter = delivery_metrics.unknown_type.labels(consumer="c", type=envelope.type)
    before = counter._value.get()
    with capture_logs() as logs:
        await dispatch("c", {}, envelope)
    assert [(e["event"], e["event_id"], e["type"]) for e in logs] == [
        ("bus.unknown_type", str(envelope.event_id), envelope.type)
    ]
    assert logs[0]["reason"]
    assert counter._value.get() == before + 1


async def test_dead_lettering_logs_one_line_with_the_reason() -> None:
    bus = InProcessBus(RetryPolicy(ladder_ms=(1,), budget_ms=2))

    async def fails(envelope: Envelope) -> None:
        raise ValueError("cannot")

    bus.subscribe("c", {AnonymousMerged.event_type: fails})
    await bus.start()
    before = metrics.events_dead_lettered.labels(consumer="c")._value.get()
    try:
        envelope = merged()
        with capture_logs() as logs:
            await bus.publish(envelope)
            await bus.idle()
        dead = [e for e in logs if e["event"] == "bus.dead_lettered"]
        assert [(e["event_id"], e["type"]) for e in dead] == [
            (str(envelope.event_id), envelope.type)
        ]
        assert "cannot" in dead[0]["reason"]
        assert [e["event"] for e in logs].count("bus.retry") == 2
        assert metrics.events_dead_lettered.labels(consumer="c")._value.get() == before + 1
        assert [d.envelope.event_id for d in bus.dead_letters] == [envelope.event_id]
    finally:
        await bus.stop()


async def test_an_event_no_one_could_receive_is_a_failed_publish() -> None:
    class Unheard(Event):
        event_type: ClassVar[str] = "probe.unheard.x.v1"  # in no registry

    bus = InProcessBus()
    await bus.start()
    try:
        with pytest.raises(UnroutableEvent):
            await bus.publish(Envelope.wrap(Unheard(), producer="t"))
        await bus.publish(merged())  # a registered type: nobody here, but routable
    finally:
        await bus.stop()


async def test_in_process_one_keys_events_are_handled_in_order_others_at_once() -> None:
    bus = InProcessBus()
    seen: list[tuple[str, str]] = []
    running: dict[str, int] = {}
    most_at_once = 0
    most_at_once_per_key = 0

    async def handle(envelope: Envelope) -> None:
        nonlocal most_at_once, most_at_once_per_key
        key, step = envelope.payload["anonymous_id"], envelope.payload["user_id"]
        running[key] = running.get(key, 0) + 1
        most_at_once = max(most_at_once, sum(running.values()))
        most_at_once_per_key = max(most_at_once_per_key, running[key])
        await asyncio.sleep(0.01 if int(step) % 2 == 0 else 0)  # later ones would overtake
        seen.append((key, step))
        running[key] -= 1

    bus.subscribe("c", {AnonymousMerged.event_type: handle})
    await bus.start()
    try:
        for step in range(6):
            for key in ("k1", "k2"):
                event = AnonymousMerged(anonymous_id=key, user_id=str(step))
                await bus.publish(Envelope.wrap(event, producer="t"), ordering_key=key)
        await bus.idle()
    finally:
        await bus.stop()
    for key in ("k1", "k2"):
        assert [step for k, step in seen if k == key] == [str(n) for n in range(6)]
    assert most_at_once_per_key == 1
    assert most_at_once > 1
