"""`RabbitBus`: the event bus on RabbitMQ, built on FastStream's `RabbitBroker` (ADR 008, 010).

- Publishing: confirmed and `mandatory` on a channel that raises on a return, so `publish`
  raises when the broker did not queue the event anywhere; the outbox keeps the row.
- Topology: on start, before consuming (and before `publish` is allowed), the bus declares the
  exchange and, for every consumer of the topology and its own, the quorum queue with its
  bindings, one retry queue per rung of the ladder and the dead-letter queue
  (`libs.contracts.topology`), and the queue of unclaimed types.
- Consuming: up to `concurrency` deliveries per consumer are handled at once (the channel's
  prefetch; aio-pika runs each delivery in its own task), except that deliveries with the same
  ordering key (`x-store-ordering-key`, an aggregate's id) are handled one after another in
  the order they arrived. A message is acknowledged only after its handler's transaction (with
  the inbox row) committed, or after it was parked on a retry rung or in the DLQ with a
  confirm. If it cannot be parked, it is rejected back to its queue and redelivered.
- Reconnection: aio-pika's robust connection under FastStream reopens channels and
  consumers; a start that fails half-way is torn down and begins again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from aio_pika.exceptions import DeliveryError
from faststream import AckPolicy
from faststream.rabbit import (
    Channel,
    ExchangeType,
    QueueType,
    RabbitBroker,
    RabbitExchange,
    RabbitMessage,
    RabbitQueue,
)

from libs.contracts import events as _registered  # noqa: F401  (fills EVENTS)
from libs.contracts.envelope import EVENTS, Envelope
from libs.contracts.topology import (
    CONSUMERS,
    QueueSpec,
    consumer_queues,
    dead_letter_queue_name,
    queue_name,
    retry_queue_name,
    unclaimed_queue,
)
from libs.runtime.delivery import (
    ATTEMPT_HEADER,
    LAST_ERROR_HEADER,
    ORDERING_KEY_HEADER,
    PARKED_AT_HEADER,
    Handler,
    OrderedLanes,
    RetryPolicy,
    UnroutableEvent,
    dead_lettered,
    dispatch,
    handler_failed,
    unreadable,
    unroutable,
)
from libs.runtime.observability import metrics

log = structlog.get_logger(__name__)


class QueueMismatch(Exception):
    """A queue exists with other arguments than the topology's; an operator must migrate it."""


async def _the_delivery(message: Any) -> Any:
    """The decoder: the handler gets the delivery itself (the bus parses the envelope, so an
    unreadable body is ours to report).

    A coroutine on purpose, like everything between the broker and the lanes: FastStream runs a
    plain-function decoder, and any injected argument, in a worker thread, and threads finish in
    any order, so deliveries would reach their lanes out of the broker's order (ADR 003)."""
    return message


class RabbitBus:
    """RabbitMQ through FastStream: confirmed mandatory publishes, quorum queues, a retry ladder."""

    def __init__(
        self,
        url: str,
        *,
        exchange: str,
        queue_prefix: str,
        retry: RetryPolicy | None = None,
        concurrency: int = 32,
        publish_timeout_s: float = 10.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("a consumer handles at least one delivery at a time")
        self.url = url
        self.exchange_name = exchange
        self.queue_prefix = queue_prefix
        self.retry = retry or RetryPolicy()
        # Unacknowledged deliveries per consumer; each is handled in its own task as it
        # arrives, so this bounds how many handlers of one consumer run at once.
        self.concurrency = concurrency
        self.publish_timeout_s = publish_timeout_s
        self._exchange = RabbitExchange(exchange, type=ExchangeType.TOPIC, durable=True)
        self._consumers: dict[str, Mapping[str, Handler]] = {}
        self.broker: RabbitBroker | None = None
        self._ready = False

    def queue_name(self, consumer: str) -> str:
        return queue_name(self.queue_prefix, consumer)

    def subscribe(self, consumer: str, handlers: Mapping[str, Handler]) -> None:
        self._consumers[consumer] = {**self._consumers.get(consumer, {}), **handlers}

    def queues_of(self, consumer: str, event_types: Sequence[str]) -> list[QueueSpec]:
        return consumer_queues(
            self.queue_prefix, consumer, event_types, ladder_ms=self.retry.ladder_ms
        )

    def topology(self) -> list[QueueSpec]:
        """Every queue of the store's topology, plus this process's own consumers.

        Declaring all of it (as `deploy/rabbitmq/definitions.json` does) means a producer never
        depends on its consumers having started first; this process's own queues and bindings
        are among them, declared before it consumes.
        """
        bindings = {consumer: set(types) for consumer, types in CONSUMERS.items()}
        for consumer, handlers in self._consumers.items():
            bindings.setdefault(consumer, set()).update(handlers)
        specs = [unclaimed_queue(self.queue_prefix, EVENTS)]
        for consumer, types in bindings.items():
            specs += self.queues_of(consumer, sorted(types))
        return specs

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, declare the topology, then consume; raises (and cleans up) if any step fails."""
        if self.broker is not None:
            return
        broker = self.build_broker()
        try:
            await broker.connect()
            await self._declare(broker, self.topology())
            await broker.start()
        except BaseException:
            # Half set up is not set up: the next start() begins again from a fresh broker.
            await broker.stop()
            raise
        self.broker = broker
        self._ready = True

    def build_broker(self) -> RabbitBroker:
        """A FastStream broker with this bus's channel settings and its consumers subscribed."""
        broker = RabbitBroker(
            self.url,
            default_channel=Channel(
                prefetch_count=self.concurrency,
                publisher_confirms=True,
                on_return_raises=True,
            ),
            timeout=10,
            fail_fast=True,
            reconnect_interval=1.0,
            logger=None,
            graceful_timeout=10,
            # No argument injection: the handler takes the delivery from the decoder, so
            # nothing runs in a worker thread before the delivery enters its lane.
            apply_types=False,
        )
        for consumer, handlers in self._consumers.items():
            self._register(broker, consumer, handlers)
        return broker

    async def stop(self) -> None:
        self._ready = False
        broker, self.broker = self.broker, None
        if broker is not None:
            await broker.stop()

    async def ping(self) -> bool:
        """Ready: connected, the topology declared and every consumer started."""
        return self._ready and self.broker is not None and await self.broker.ping(timeout=1)

    async def _declare(self, broker: RabbitBroker, specs: list[QueueSpec]) -> None:
        exchange = await broker.declare_exchange(self._exchange)
        for spec in specs:
            try:
                queue = await broker.declare_queue(rabbit_queue(spec))
            except BaseException as exc:
                if "PRECONDITION_FAILED" not in str(exc):
                    raise
                # An older deployment's queue of the same name (ADR 010): never guess, say it.
                log.error(
                    "bus.queue_mismatch",
                    queue=spec.name,
                    reason=str(exc),
                    fix="docs/operations.md, 'Upgrading the queues'",
                )
                raise QueueMismatch(spec.name) from exc
            for event_type in spec.bindings:
                await queue.bind(exchange, routing_key=event_type)

    async def declare_consumer_queues(self, consumer: str, event_types: list[str]) -> Any:
        """Declare a consumer's queues and bindings (for consumers outside this process)."""
        if self.broker is None:
            raise ConnectionError("the bus is not connected")
        specs = self.queues_of(consumer, event_types)
        await self._declare(self.broker, specs)
        return await self.broker.declare_queue(rabbit_queue(specs[0]))

    # --- publishing --------------------------------------------------------------------------

    async def publish(self, envelope: Envelope, *, ordering_key: str | None = None) -> None:
        """Return once the broker confirmed the event into at least one queue; raise otherwise."""
        if self.broker is None:
            raise ConnectionError("the bus is not connected")
        try:
            await self.broker.publish(
                envelope.to_bytes(),
                exchange=self._exchange,
                routing_key=envelope.type,
                mandatory=True,
                persist=True,
                headers={ORDERING_KEY_HEADER: ordering_key} if ordering_key else None,
                content_type="application/json",
                message_id=str(envelope.event_id),
                correlation_id=envelope.correlation_id or str(envelope.event_id),
                message_type=envelope.type,
                timestamp=envelope.occurred_at,
                timeout=self.publish_timeout_s,
            )
        except DeliveryError as exc:
            if not _is_return(exc):
                raise  # a negative confirm: the broker could not take it
            reason = "returned: no queue is bound to this type"
            unroutable(envelope, reason)
            raise UnroutableEvent(reason) from exc
        metrics.events_published.labels(type=envelope.type).inc()

    # --- consuming ---------------------------------------------------------------------------

    def _register(
        self, broker: RabbitBroker, consumer: str, handlers: Mapping[str, Handler]
    ) -> None:
        spec = self.queues_of(consumer, sorted(handlers))[0]
        subscriber = broker.subscriber(
            rabbit_queue(spec),
            ack_policy=AckPolicy.NACK_ON_ERROR,
            no_reply=True,
            decoder=_the_delivery,
            title=spec.name,
        )

        lanes = OrderedLanes()

        async def on_message(message: RabbitMessage) -> None:
            # aio-pika starts one task per delivery, in arrival order, and nothing between
            # there and here suspends (the decoder is a coroutine, never a worker thread): so
            # deliveries enter their key's lane in arrival order.
            key = (message.raw_message.headers or {}).get(ORDERING_KEY_HEADER)
            async with lanes.hold(str(key) if key else None):
                await self._handle(consumer, handlers, message)

        subscriber(on_message)

    async def _handle(
        self, consumer: str, handlers: Mapping[str, Handler], message: RabbitMessage
    ) -> None:
        """Handle one delivery; returning acks it, raising makes the broker redeliver it."""
        raw = message.raw_message
        headers = dict(raw.headers or {})
        attempt = int(str(headers.get(ATTEMPT_HEADER, 0)))
        try:
            envelope = Envelope.from_bytes(raw.body)
        except Exception as exc:  # unreadable: retrying cannot help
            await self._park(
                raw,
                dead_letter_queue_name(self.queue_prefix, consumer),
                attempt,
                repr(exc),
            )
            unreadable(
                consumer, event_id=str(raw.message_id), event_type=str(raw.type), reason=repr(exc)
            )
            return
        try:
            await dispatch(consumer, handlers, envelope)
        except Exception as exc:
            await self._retry_or_dead_letter(consumer, raw, envelope, attempt + 1, repr(exc))

    async def _retry_or_dead_letter(
        self, consumer: str, raw: Any, envelope: Envelope, attempt: int, reason: str
    ) -> None:
        event_id = str(envelope.event_id)
        delay_ms = self.retry.delay_ms(attempt)
        if delay_ms is None:
            metrics.events_failed.labels(consumer=consumer, type=envelope.type).inc()
            dlq = dead_letter_queue_name(self.queue_prefix, consumer)
            await self._park(raw, dlq, attempt - 1, reason)
            dead_lettered(consumer, event_id=event_id, event_type=envelope.type, reason=reason)
            return
        rung = retry_queue_name(self.queue_prefix, consumer, delay_ms)
        await self._park(raw, rung, attempt, reason)
        handler_failed(
            consumer,
            event_id=event_id,
            event_type=envelope.type,
            attempt=attempt,
            error=reason,
            delay_ms=delay_ms,
        )

    async def _park(self, raw: Any, queue: str, attempt: int, error: str) -> None:
        """Copy the message to `queue` (a retry rung or the DLQ), confirmed, with its history."""
        assert self.broker is not None
        headers = dict(raw.headers or {})
        headers[ATTEMPT_HEADER] = attempt
        headers[LAST_ERROR_HEADER] = error[:500]
        headers[PARKED_AT_HEADER] = datetime.now(UTC)
        await self.broker.publish(
            raw.body,
            routing_key=queue,
            mandatory=True,
            persist=True,
            headers=headers,
            content_type=raw.content_type,
            message_id=raw.message_id,
            correlation_id=raw.correlation_id,
            message_type=raw.type,
            timestamp=raw.timestamp,
            timeout=self.publish_timeout_s,
        )


def rabbit_queue(spec: QueueSpec) -> RabbitQueue:
    queue_type = (
        QueueType.QUORUM if spec.arguments.get("x-queue-type") == "quorum" else QueueType.CLASSIC
    )
    arguments = {k: v for k, v in spec.arguments.items() if k != "x-queue-type"}
    return RabbitQueue(spec.name, queue_type, durable=True, arguments=arguments)  # type: ignore[call-overload]


def _is_return(exc: DeliveryError) -> bool:
    """A returned message (no route), as opposed to a negative confirm."""
    import aiormq

    return isinstance(getattr(exc, "frame", None), aiormq.spec.Basic.Return)
