"""Names on the broker: the exchange, which consumer (queue) takes which event types, and the
queues each consumer owns (ADR 010).

Each service's `SUBSCRIPTIONS` must match its entry here (a contract test checks it); the
AsyncAPI document and `deploy/rabbitmq/definitions.json` are generated from this and the
payload models. Every service declares its own queues from here before it runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_EXCHANGE = "store.events"
DEFAULT_QUEUE_PREFIX = "store"

CONSUMERS: dict[str, tuple[str, ...]] = {
    "catalog": (
        "cart.cart.checked_out.v1",
        "orders.order.canceled.v1",
        "payments.payment.expired.v1",
    ),
    "cart": (
        "catalog.pricing.changed.v1",
        "catalog.product.changed.v1",
        "orders.order.created.v1",
        "orders.order.paid.v1",
    ),
    "orders": (
        "payments.payment.succeeded.v1",
        "payments.refund.succeeded.v1",
        "payments.refund.failed.v1",
        "payments.dispute.opened.v1",
        "payments.dispute.closed.v1",
        "identity.anonymous.merged.v1",
        "payments.subscription.renewed.v1",
    ),
    "payments": ("identity.anonymous.merged.v1", "orders.order.canceled.v1"),
    # The shopper's e-mails; the created and merged events keep who owns each order.
    "notifications": (
        "orders.order.created.v1",
        "orders.order.paid.v1",
        "orders.order.fulfilled.v1",
        "payments.payment.failed.v1",
        "payments.refund.succeeded.v1",
        "payments.subscription.renewed.v1",
        "payments.subscription.past_due.v1",
        "identity.anonymous.merged.v1",
    ),
}

# Events of types no consumer above takes wait here, so that publishing them (which is
# `mandatory`) succeeds; a team that subscribes later can replay them from it. It is an
# archive of the newest 100,000: when it is full, the oldest message is dropped to make room
# (`drop-head`), so a steady stream of unclaimed events never fills it and never blocks a
# producer's outbox (ADR 010).
UNCLAIMED = "unclaimed"
UNCLAIMED_MAX_LENGTH = 100_000
UNCLAIMED_OVERFLOW = "drop-head"

# The fixed ladder of retry delays: one queue per rung, every message in a rung waits the same
# time, so a long wait never holds back a short one (no head-of-line blocking). The top rung
# (repeated until the budget is spent) bounds how long a message waits once its cause is gone:
# at most 30 s after a database or broker outage ends, however long the outage lasted.
DEFAULT_RETRY_LADDER_MS: tuple[int, ...] = (1_000, 5_000, 15_000, 30_000)

# Redeliveries of one message (a consumer that crashed or lost its connection while holding
# it) before the broker dead-letters it: ends a crash loop on a poison message. Handler
# failures do not count here; they go through the retry ladder.
DELIVERY_LIMIT = 20

QUORUM = "quorum"


def producer_of(event_type: str) -> str:
    """The service that publishes an event type (its first segment; identity events: cart)."""
    service = event_type.split(".")[0]
    return "cart" if service == "identity" else service


def queue_name(prefix: str, consumer: str) -> str:
    """`<prefix>.<consumer>`, with its retry rungs and its `.dlq` beside it."""
    return f"{prefix}.{consumer}"


def dead_letter_queue_name(prefix: str, consumer: str) -> str:
    return f"{queue_name(prefix, consumer)}.dlq"


def retry_queue_name(prefix: str, consumer: str, delay_ms: int) -> str:
    """The rung of `delay_ms`, named by its delay: `store.orders.retry.10s`."""
    return f"{queue_name(prefix, consumer)}.retry.{delay_label(delay_ms)}"


def delay_label(delay_ms: int) -> str:
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1_000)):
        if delay_ms % size == 0:
            return f"{delay_ms // size}{unit}"
    return f"{delay_ms}ms"


@dataclass(frozen=True)
class QueueSpec:
    """One queue as declared on the broker, and the event types bound to it."""

    name: str
    arguments: dict[str, Any]
    bindings: tuple[str, ...] = field(default=())


def _dead_letter_to(target: str) -> dict[str, Any]:
    # at-least-once: the broker keeps a dead-lettered message until the target confirms it.
    return {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": target,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def consumer_queues(
    prefix: str,
    consumer: str,
    event_types: Iterable[str],
    *,
    ladder_ms: Sequence[int] = DEFAULT_RETRY_LADDER_MS,
) -> list[QueueSpec]:
    """The consumer's queue (bound to its types), one queue per retry rung, and its DLQ."""
    main = queue_name(prefix, consumer)
    dlq = dead_letter_queue_name(prefix, consumer)
    queues = [
        QueueSpec(
            main,
            {
                "x-queue-type": QUORUM,
                "x-delivery-limit": DELIVERY_LIMIT,
                **_dead_letter_to(dlq),
            },
            tuple(sorted(event_types)),
        )
    ]
    for delay_ms in sorted(set(ladder_ms)):
        queues.append(
            QueueSpec(
                retry_queue_name(prefix, consumer, delay_ms),
                {"x-queue-type": QUORUM, "x-message-ttl": delay_ms, **_dead_letter_to(main)},
            )
        )
    # A classic queue: nothing consumes it, and a quorum queue's delivery limit would count
    # every look an operator takes at it (ADR 010).
    queues.append(QueueSpec(dlq, {"x-queue-type": "classic"}))
    return queues


def unclaimed_queue(prefix: str, published: Iterable[str]) -> QueueSpec:
    """The queue bound to every published type that no consumer of `CONSUMERS` takes."""
    claimed = {t for types in CONSUMERS.values() for t in types}
    return QueueSpec(
        queue_name(prefix, UNCLAIMED),
        {
            "x-queue-type": QUORUM,
            "x-max-length": UNCLAIMED_MAX_LENGTH,
            "x-overflow": UNCLAIMED_OVERFLOW,
        },
        tuple(sorted(set(published) - claimed)),
    )


def definitions(
    *,
    exchange: str = DEFAULT_EXCHANGE,
    prefix: str = DEFAULT_QUEUE_PREFIX,
    ladder_ms: Sequence[int] = DEFAULT_RETRY_LADDER_MS,
    published: Iterable[str] = (),
    vhost: str = "/",
) -> dict[str, Any]:
    """RabbitMQ definitions of the whole topology, imported on the broker's first boot."""
    queues = [
        spec
        for consumer, types in CONSUMERS.items()
        for spec in consumer_queues(prefix, consumer, types, ladder_ms=ladder_ms)
    ]
    queues.append(unclaimed_queue(prefix, published))
    return {
        "vhosts": [{"name": vhost}],
        "exchanges": [
            {
                "name": exchange,
                "vhost": vhost,
                "type": "topic",
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
        ],
        "queues": [
            {
                "name": spec.name,
                "vhost": vhost,
                "durable": True,
                "auto_delete": False,
                "arguments": spec.arguments,
            }
            for spec in queues
        ],
        "bindings": [
            {
                "source": exchange,
                "vhost": vhost,
                "destination": spec.name,
                "destination_type": "queue",
                "routing_key": event_type,
                "arguments": {},
            }
            for spec in queues
            for event_type in spec.bindings
        ],
    }
