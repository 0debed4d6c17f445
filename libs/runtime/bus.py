"""The event bus port and its two adapters.

`RabbitBus` (distributed mode, `libs/runtime/rabbit.py`) publishes to one durable topic
exchange with publisher confirms and `mandatory`; each consumer owns a durable queue bound to
the event types it handles, a ladder of retry queues and a dead-letter queue (ADR 008, 010).
`InProcessBus` (embedded mode) gives the same semantics inside one process. Handlers are the
same functions in both, called through `libs.runtime.delivery.dispatch`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from libs.contracts import events as _registered  # noqa: F401  (fills EVENTS)
from libs.contracts.envelope import EVENTS, Envelope
from libs.runtime.delivery import (
    Handler,
    OrderedLanes,
    RetryPolicy,
    UnroutableEvent,
    dead_lettered,
    dispatch,
    handler_failed,
    unroutable,
)
from libs.runtime.observability import metrics

__all__ = [
    "DeadLetter",
    "EventBus",
    "Handler",
    "InProcessBus",
    "RetryPolicy",
    "UnroutableEvent",
    "create_bus",
]


class EventBus(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, envelope: Envelope, *, ordering_key: str | None = None) -> None:
        """Return once the broker has queued the event; raise if it did not (unroutable too).

        Deliveries with the same `ordering_key` are handled one after another by each consumer.
        """

    def subscribe(self, consumer: str, handlers: Mapping[str, Handler]) -> None:
        """Register a consumer's handlers by event type; call before `start`."""

    async def ping(self) -> bool: ...


# --- in-process ------------------------------------------------------------------------------


@dataclass
class DeadLetter:
    consumer: str
    envelope: Envelope
    error: str


@dataclass
class _Consumer:
    name: str
    handlers: Mapping[str, Handler]
    queue: asyncio.Queue[tuple[Envelope, int, str | None]] = field(default_factory=asyncio.Queue)
    workers: list[asyncio.Task[None]] = field(default_factory=list)
    lanes: OrderedLanes = field(default_factory=OrderedLanes)


class InProcessBus:
    """Topic routing, retries and a dead-letter list inside one process (embedded mode)."""

    def __init__(self, retry: RetryPolicy | None = None, *, workers_per_consumer: int = 4) -> None:
        self.retry = retry or RetryPolicy()
        self._consumers: dict[str, _Consumer] = {}
        self._workers_per_consumer = workers_per_consumer
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._started = False
        self.dead_letters: list[DeadLetter] = []

    def subscribe(self, consumer: str, handlers: Mapping[str, Handler]) -> None:
        existing = self._consumers.get(consumer)
        merged = {**(existing.handlers if existing else {}), **handlers}
        self._consumers[consumer] = _Consumer(consumer, merged)
        if self._started:
            self._start_workers(self._consumers[consumer])

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        for consumer in self._consumers.values():
            self._start_workers(consumer)

    def _start_workers(self, consumer: _Consumer) -> None:
        for n in range(self._workers_per_consumer):
            consumer.workers.append(
                asyncio.create_task(self._work(consumer), name=f"bus-{consumer.name}-{n}")
            )

    async def stop(self) -> None:
        for consumer in self._consumers.values():
            for task in consumer.workers:
                task.cancel()
            for task in consumer.workers:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            consumer.workers.clear()
        self._started = False

    async def ping(self) -> bool:
        return True

    async def publish(self, envelope: Envelope, *, ordering_key: str | None = None) -> None:
        """Queue the event for every consumer of its type; raise if it would reach nobody."""
        targets = [c for c in self._consumers.values() if envelope.type in c.handlers]
        if not targets and envelope.type not in EVENTS:
            # As on RabbitMQ, where every registered type has at least the unclaimed queue.
            reason = "no consumer subscribes to this type"
            unroutable(envelope, reason)
            raise UnroutableEvent(reason)
        metrics.events_published.labels(type=envelope.type).inc()
        for consumer in targets:
            self._enqueue(consumer, envelope, 0, ordering_key)

    def _enqueue(
        self, consumer: _Consumer, envelope: Envelope, attempt: int, key: str | None
    ) -> None:
        self._pending += 1
        self._idle.clear()
        consumer.queue.put_nowait((envelope, attempt, key))

    def _done(self) -> None:
        self._pending -= 1
        if self._pending == 0:
            self._idle.set()

    async def idle(self, within_s: float = 10.0) -> None:
        """Wait until every published event was handled or dead-lettered (tests, shutdown)."""
        await asyncio.wait_for(self._idle.wait(), within_s)

    async def _work(self, consumer: _Consumer) -> None:
        while True:
            envelope, attempt, key = await consumer.queue.get()
            try:
                # Taken right after `get`, so the lane keeps the queue's order, as on RabbitMQ.
                async with consumer.lanes.hold(key):
                    await dispatch(consumer.name, consumer.handlers, envelope)
            except Exception as exc:
                self._retry_or_dead_letter(consumer, envelope, attempt + 1, key, exc)
            finally:
                self._done()

    def _retry_or_dead_letter(
        self,
        consumer: _Consumer,
        envelope: Envelope,
        attempt: int,
        key: str | None,
        exc: Exception,
    ) -> None:
        delay_ms = self.retry.delay_ms(attempt)
        event_id, reason = str(envelope.event_id), repr(exc)
        if delay_ms is None:
            metrics.events_failed.labels(consumer=consumer.name, type=envelope.type).inc()
            dead_lettered(consumer.name, event_id=event_id, event_type=envelope.type, reason=reason)
            self.dead_letters.append(DeadLetter(consumer.name, envelope, reason))
            return
        handler_failed(
            consumer.name,
            event_id=event_id,
            event_type=envelope.type,
            attempt=attempt,
            error=reason,
            delay_ms=delay_ms,
        )
        self._pending += 1  # the delayed retry counts as pending work
        self._idle.clear()

        def requeue() -> None:
            self._pending -= 1
            self._enqueue(consumer, envelope, attempt, key)

        asyncio.get_running_loop().call_later(delay_ms / 1000, requeue)


def create_bus(
    url: str, *, exchange: str, queue_prefix: str, retry: RetryPolicy, concurrency: int = 32
) -> EventBus:
    """The bus adapter the URL names: `memory://` or an AMQP URL."""
    if url.startswith("memory://"):
        return InProcessBus(retry)
    from libs.runtime.rabbit import RabbitBus

    return RabbitBus(
        url, exchange=exchange, queue_prefix=queue_prefix, retry=retry, concurrency=concurrency
    )
