"""The event bus port and its two adapters.

`RabbitBus` (distributed mode) publishes to one durable topic exchange with publisher
confirms; each consumer owns a durable queue bound to the event types it handles, a retry
queue (messages wait there for a growing delay, then dead-letter back into the main queue)
and a dead-letter queue for messages that still fail after the configured retries.
`InProcessBus` (embedded mode) gives the same semantics inside one process.
Handlers are the same functions in both.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from libs.contracts.envelope import Envelope
from libs.runtime.observability import metrics

log = structlog.get_logger(__name__)

Handler = Callable[[Envelope], Awaitable[None]]

ATTEMPT_HEADER = "x-store-attempt"


class EventBus(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, envelope: Envelope) -> None:
        """Return once the broker has accepted the event (publisher confirm)."""

    def subscribe(self, consumer: str, handlers: Mapping[str, Handler]) -> None:
        """Register a consumer's handlers by event type; call before `start`."""

    async def ping(self) -> bool: ...


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    first_delay_ms: int = 200

    def delay_ms(self, attempt: int) -> int:
        """Delay before retry number `attempt` (1-based): doubles each time, capped at 1 min."""
        return min(self.first_delay_ms * 2 ** (attempt - 1), 60_000)


async def _dispatch(consumer: str, handlers: Mapping[str, Handler], envelope: Envelope) -> None:
    handler = handlers.get(envelope.type)
    if handler is None:  # bound by a wildcard or an old binding: nothing to do
        return
    await handler(envelope)
    metrics.events_consumed.labels(consumer=consumer, type=envelope.type).inc()


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
    queue: asyncio.Queue[tuple[Envelope, int]] = field(default_factory=asyncio.Queue)
    workers: list[asyncio.Task[None]] = field(default_factory=list)


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

    async def publish(self, envelope: Envelope) -> None:
        metrics.events_published.labels(type=envelope.type).inc()
        for consumer in self._consumers.values():
            if envelope.type in consumer.handlers:
                self._enqueue(consumer, envelope, 0)

    def _enqueue(self, consumer: _Consumer, envelope: Envelope, attempt: int) -> None:
        self._pending += 1
        self._idle.clear()
        consumer.queue.put_nowait((envelope, attempt))

    def _done(self) -> None:
        self._pending -= 1
        if self._pending == 0:
            self._idle.set()

    async def idle(self, within_s: float = 10.0) -> None:
        """Wait until every published event was handled or dead-lettered (tests, shutdown)."""
        await asyncio.wait_for(self._idle.wait(), within_s)

    async def _work(self, consumer: _Consumer) -> None:
        while True:
            envelope, attempt = await consumer.queue.get()
            try:
                await _dispatch(consumer.name, consumer.handlers, envelope)
            except Exception as exc:
                metrics.events_failed.labels(consumer=consumer.name, type=envelope.type).inc()
                self._retry_or_dead_letter(consumer, envelope, attempt + 1, exc)
            finally:
                self._done()

    def _retry_or_dead_letter(
        self, consumer: _Consumer, envelope: Envelope, attempt: int, exc: Exception
    ) -> None:
        if attempt > self.retry.max_retries:
            log.error(
                "bus.dead_lettered",
                consumer=consumer.name,
                event_id=str(envelope.event_id),
                type=envelope.type,
                error=repr(exc),
            )
            metrics.events_dead_lettered.labels(consumer=consumer.name).inc()
            self.dead_letters.append(DeadLetter(consumer.name, envelope, repr(exc)))
            return
        log.warning(
            "bus.retry",
            consumer=consumer.name,
            event_id=str(envelope.event_id),
            attempt=attempt,
            error=repr(exc),
        )
        self._pending += 1  # the delayed retry counts as pending work
        self._idle.clear()

        def requeue() -> None:
            self._pending -= 1
            self._enqueue(consumer, envelope, attempt)

        asyncio.get_running_loop().call_later(self.retry.delay_ms(attempt) / 1000, requeue)


# --- RabbitMQ --------------------------------------------------------------------------------


class RabbitBus:
    """RabbitMQ through aio-pika: confirmed publishes, durable queues, retry and dead-letter queues."""

    def __init__(
        self,
        url: str,
        *,
        exchange: str,
        queue_prefix: str,
        retry: RetryPolicy | None = None,
        prefetch: int = 32,
    ) -> None:
        self.url = url
        self.exchange_name = exchange
        self.queue_prefix = queue_prefix
        self.retry = retry or RetryPolicy()
        self.prefetch = prefetch
        self._consumers: dict[str, Mapping[str, Handler]] = {}
        self._connection: Any = None
        self._publish_channel: Any = None
        self._exchange: Any = None
        self._publish_lock = asyncio.Lock()
        self._ready = False

    def queue_name(self, consumer: str) -> str:
        return f"{self.queue_prefix}.{consumer}"

    def subscribe(self, consumer: str, handlers: Mapping[str, Handler]) -> None:
        self._consumers[consumer] = {**self._consumers.get(consumer, {}), **handlers}

    async def start(self) -> None:
        import aio_pika

        if self._connection is not None:
            return
        connection = await aio_pika.connect_robust(self.url, timeout=10)
        try:
            self._connection = connection
            self._publish_channel = await connection.channel(publisher_confirms=True)
            self._exchange = await self._publish_channel.declare_exchange(
                self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
            )
            for consumer, handlers in self._consumers.items():
                await self._start_consumer(consumer, handlers)
        except BaseException:
            # Half set up is not set up: the next start() begins again from a fresh connection.
            self._connection = self._exchange = None
            await connection.close()
            raise
        self._ready = True

    async def declare_consumer_queues(self, consumer: str, event_types: list[str]) -> Any:
        """Declare a consumer's queue, retry queue and dead-letter queue, and bind the types."""
        import aio_pika

        channel = await self._connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=self.prefetch)
        exchange = await channel.declare_exchange(
            self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        name = self.queue_name(consumer)
        queue = await channel.declare_queue(name, durable=True)
        await channel.declare_queue(
            f"{name}.retry",
            durable=True,
            arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": name},
        )
        await channel.declare_queue(f"{name}.dlq", durable=True)
        for event_type in event_types:
            await queue.bind(exchange, routing_key=event_type)
        return channel, queue

    async def _start_consumer(self, consumer: str, handlers: Mapping[str, Handler]) -> None:
        channel, queue = await self.declare_consumer_queues(consumer, sorted(handlers))

        async def on_message(message: Any) -> None:
            await self._handle(channel, consumer, handlers, message)

        await queue.consume(on_message)

    async def _handle(
        self, channel: Any, consumer: str, handlers: Mapping[str, Handler], message: Any
    ) -> None:
        name = self.queue_name(consumer)
        attempt = int((message.headers or {}).get(ATTEMPT_HEADER, 0))
        try:
            envelope = Envelope.from_bytes(message.body)
        except Exception as exc:  # unreadable: retrying cannot help
            await self._send_to(channel, f"{name}.dlq", message, attempt, repr(exc))
            metrics.events_dead_lettered.labels(consumer=consumer).inc()
            await message.ack()
            return
        try:
            await _dispatch(consumer, handlers, envelope)
        except Exception as exc:
            metrics.events_failed.labels(consumer=consumer, type=envelope.type).inc()
            try:
                if attempt + 1 > self.retry.max_retries:
                    log.error(
                        "bus.dead_lettered",
                        consumer=consumer,
                        type=envelope.type,
                        event_id=str(envelope.event_id),
                        error=repr(exc),
                    )
                    await self._send_to(channel, f"{name}.dlq", message, attempt, repr(exc))
                    metrics.events_dead_lettered.labels(consumer=consumer).inc()
                else:
                    log.warning(
                        "bus.retry",
                        consumer=consumer,
                        type=envelope.type,
                        event_id=str(envelope.event_id),
                        attempt=attempt + 1,
                        error=repr(exc),
                    )
                    await self._send_to(
                        channel,
                        f"{name}.retry",
                        message,
                        attempt + 1,
                        repr(exc),
                        expiration_ms=self.retry.delay_ms(attempt + 1),
                    )
            except Exception:
                # Could not park it anywhere: let the broker redeliver it rather than lose it.
                await message.nack(requeue=True)
                return
            await message.ack()
            return
        await message.ack()

    async def _send_to(
        self,
        channel: Any,
        queue: str,
        message: Any,
        attempt: int,
        error: str,
        *,
        expiration_ms: int | None = None,
    ) -> None:
        import aio_pika

        headers = dict(message.headers or {})
        headers[ATTEMPT_HEADER] = attempt
        headers["x-store-last-error"] = error[:500]
        await channel.default_exchange.publish(
            aio_pika.Message(
                body=message.body,
                headers=headers,
                content_type=message.content_type,
                message_id=message.message_id,
                correlation_id=message.correlation_id,
                type=message.type,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                expiration=expiration_ms / 1000 if expiration_ms is not None else None,
            ),
            routing_key=queue,
        )

    async def publish(self, envelope: Envelope) -> None:
        import aio_pika

        if self._exchange is None:
            raise ConnectionError("the bus is not connected")
        await self._exchange.publish(
            aio_pika.Message(
                body=envelope.to_bytes(),
                content_type="application/json",
                message_id=str(envelope.event_id),
                correlation_id=envelope.correlation_id,
                type=envelope.type,
                timestamp=envelope.occurred_at,
                app_id=envelope.producer,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=envelope.type,
            timeout=10,
        )
        metrics.events_published.labels(type=envelope.type).inc()

    async def ping(self) -> bool:
        """Ready: connected, the exchange declared and every consumer started."""
        return self._ready and self._connection is not None and not self._connection.is_closed

    async def stop(self) -> None:
        self._ready = False
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
            self._exchange = None


def create_bus(url: str, *, exchange: str, queue_prefix: str, retry: RetryPolicy) -> EventBus:
    """The bus adapter the URL names: `memory://` or an AMQP URL."""
    if url.startswith("memory://"):
        return InProcessBus(retry)
    return RabbitBus(url, exchange=exchange, queue_prefix=queue_prefix, retry=retry)
