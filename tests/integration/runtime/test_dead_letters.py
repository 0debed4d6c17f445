"""`store dlq list|replay` on a real broker: dead letters are seen in place and moved back
with their history."""

from __future__ import annotations

import pytest

from libs.contracts.envelope import Envelope
from libs.contracts.events import AnonymousMerged
from libs.runtime.dead_letters import list_dead_letters, replay_dead_letters
from libs.runtime.delivery import RetryPolicy
from libs.runtime.observability import metrics
from libs.runtime.rabbit import RabbitBus
from tests.conftest import BusNames
from tests.integration.runtime.support import eventually

pytestmark = pytest.mark.integration


async def test_dead_letters_are_listed_in_place_and_replayed_with_their_history(
    bus_names: BusNames,
) -> None:
    bus = RabbitBus(
        bus_names.url,
        exchange=bus_names.exchange,
        queue_prefix=bus_names.queue_prefix,
        retry=RetryPolicy(ladder_ms=(20,), budget_ms=20),  # one retry
    )
    broken = True
    handled: list[str] = []

    async def handle(envelope: Envelope) -> None:
        if broken:
            raise ValueError("the database is away")
        handled.append(envelope.payload["user_id"])

    bus.subscribe("consumer", {AnonymousMerged.event_type: handle})
    dead = metrics.events_dead_lettered.labels(consumer="consumer")
    names = {"url": bus_names.url, "prefix": bus_names.queue_prefix, "consumer": "consumer"}
    await bus.start()
    try:
        envelopes = [
            Envelope.wrap(AnonymousMerged(anonymous_id="a", user_id=f"u{n}"), producer="t")
            for n in range(3)
        ]
        before = dead._value.get()
        for envelope in envelopes:
            await bus.publish(envelope)

        async def all_dead(count: float) -> bool:
            return dead._value.get() - before >= count

        await eventually(lambda: all_dead(3))
        letters = await list_dead_letters(**names, limit=2)
        assert len(letters) == 2
        assert {letter.event_id for letter in letters} <= {str(e.event_id) for e in envelopes}
        assert all(
            letter.attempts == 2 and "database is away" in letter.last_error for letter in letters
        )
        assert all(letter.dead_lettered_at is not None for letter in letters)
        assert len(await list_dead_letters(**names, limit=10)) == 3  # listing took none away

        # Replayed while still broken: back in the DLQ, carrying the count of its replays.
        assert await replay_dead_letters(**names, limit=1) == 1
        await eventually(lambda: all_dead(4))
        letters = await list_dead_letters(**names, limit=10)
        assert sorted(letter.replays for letter in letters) == [0, 0, 1]

        broken = False
        assert await replay_dead_letters(**names, limit=10) == 3

        async def all_handled() -> bool:
            return sorted(handled) == ["u0", "u1", "u2"]

        await eventually(all_handled)
        assert await list_dead_letters(**names, limit=10) == []
    finally:
        await bus.stop()
