"""An operator's view of a consumer's dead-letter queue, and its replay (`store dlq`).

Replaying moves a dead letter back to the consumer's queue with a fresh retry budget. Its
history stays on the message: RabbitMQ's `x-death` entries, the last error, and our own
`x-store-replays` count and `x-store-replayed-errors` list. Each message is acknowledged on
the dead-letter queue only after the broker confirmed its copy in the consumer's queue, so
a replay cut short loses nothing (at worst a message is delivered twice; the inbox drops it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from libs.contracts.topology import dead_letter_queue_name, queue_name
from libs.runtime.delivery import (
    ATTEMPT_HEADER,
    LAST_ERROR_HEADER,
    PARKED_AT_HEADER,
    REPLAYS_HEADER,
)

REPLAYED_ERRORS_HEADER = "x-store-replayed-errors"


@dataclass(frozen=True)
class DeadLetterInfo:
    """What an operator needs to decide about one dead letter."""

    event_id: str
    type: str
    attempts: int
    last_error: str
    dead_lettered_at: datetime | None
    replays: int


async def list_dead_letters(
    url: str, *, prefix: str, consumer: str, limit: int
) -> list[DeadLetterInfo]:
    """The first `limit` dead letters of a consumer; they stay in the queue, in order."""
    import aio_pika

    connection = await aio_pika.connect(url, timeout=10)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(dead_letter_queue_name(prefix, consumer))
        found = []
        for _ in range(limit):
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            found.append(_describe(message))
        # Closing the channel without acknowledging returns every message to the queue.
        await channel.close()
        return found
    finally:
        await connection.close()


async def replay_dead_letters(url: str, *, prefix: str, consumer: str, limit: int) -> int:
    """Move up to `limit` dead letters back to the consumer's queue; returns how many moved."""
    import aio_pika

    connection = await aio_pika.connect(url, timeout=10)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        dlq = await channel.get_queue(dead_letter_queue_name(prefix, consumer))
        target = queue_name(prefix, consumer)
        moved = 0
        while moved < limit:
            message = await dlq.get(no_ack=False, fail=False)
            if message is None:
                break
            await channel.default_exchange.publish(_replayed(message), routing_key=target)
            await message.ack()
            moved += 1
        return moved
    finally:
        await connection.close()


def _replayed(message: Any) -> Any:
    import aio_pika

    headers = dict(message.headers or {})
    errors: Sequence[Any] = headers.get(REPLAYED_ERRORS_HEADER) or []
    headers[REPLAYED_ERRORS_HEADER] = [*errors, str(headers.get(LAST_ERROR_HEADER, ""))][-20:]
    headers[REPLAYS_HEADER] = int(str(headers.get(REPLAYS_HEADER, 0))) + 1
    headers[ATTEMPT_HEADER] = 0  # a fresh retry budget
    return aio_pika.Message(
        body=message.body,
        headers=headers,
        content_type=message.content_type,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        type=message.type,
        timestamp=message.timestamp,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


def _describe(message: Any) -> DeadLetterInfo:
    headers = message.headers or {}
    deaths = headers.get("x-death") or []
    times: list[datetime] = [
        d["time"] for d in deaths if isinstance(d, dict) and isinstance(d.get("time"), datetime)
    ]
    parked = headers.get(PARKED_AT_HEADER)
    return DeadLetterInfo(
        event_id=str(message.message_id or "?"),
        type=str(message.type or "?"),
        attempts=int(str(headers.get(ATTEMPT_HEADER, 0))) + 1,
        last_error=str(headers.get(LAST_ERROR_HEADER, "")),
        dead_lettered_at=parked or (max(times) if times else None),
        replays=int(str(headers.get(REPLAYS_HEADER, 0))),
    )
