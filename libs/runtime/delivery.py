"""What happens to one delivered event, whichever bus delivered it (ADR 008).

`dispatch` is the one place a handler is called: both buses use it, so whatever must wrap
every handler call (the inbox is inside the handler; tracing goes around it) goes here.
The retry policy and the one-line log and metric of every outcome that is not "handled"
(unknown type, unreadable body, retry, dead letter, unroutable publish) live here too, so
nothing is dropped or parked without saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import structlog
from prometheus_client import Counter

from libs.contracts.envelope import Envelope
from libs.contracts.topology import DEFAULT_RETRY_LADDER_MS
from libs.runtime.observability import metrics

log = structlog.get_logger(__name__)

Handler = Callable[[Envelope], Awaitable[None]]

ATTEMPT_HEADER = "x-store-attempt"
LAST_ERROR_HEADER = "x-store-last-error"
REPLAYS_HEADER = "x-store-replays"
PARKED_AT_HEADER = "x-store-parked-at"
# The outbox row's ordering key (an aggregate's id, ADR 003), so that a consumer handles the
# events of one aggregate one after another while it handles the others concurrently.
ORDERING_KEY_HEADER = "x-store-ordering-key"


@dataclass(frozen=True)
class _DeliveryMetrics:
    unknown_type: Counter
    unreadable: Counter
    retried: Counter
    unroutable: Counter


def _build_metrics() -> _DeliveryMetrics:
    return _DeliveryMetrics(
        unknown_type=Counter(
            "store_events_unknown_type_total",
            "Events of a type the consumer has no handler for (acknowledged, not handled).",
            ["consumer", "type"],
        ),
        unreadable=Counter(
            "store_events_unreadable_total",
            "Messages whose body is not an event envelope (sent to the dead-letter queue).",
            ["consumer"],
        ),
        retried=Counter(
            "store_events_retried_total",
            "Failed events parked on a retry rung.",
            ["consumer", "delay"],
        ),
        unroutable=Counter(
            "store_events_unroutable_total",
            "Publishes the broker returned: no queue is bound to the type (kept in the outbox).",
            ["type"],
        ),
    )


delivery_metrics = _build_metrics()


class UnroutableEvent(Exception):
    """The publish reached no queue (a `mandatory` publish the broker returned)."""


@dataclass(frozen=True)
class RetryPolicy:
    """Retries climb a fixed ladder of delays; the last rung repeats until the budget is spent."""

    ladder_ms: Sequence[int] = DEFAULT_RETRY_LADDER_MS
    budget_ms: int = 3_600_000

    def __post_init__(self) -> None:
        if not self.ladder_ms or min(self.ladder_ms) <= 0:
            raise ValueError("the retry ladder needs at least one positive delay")
        object.__setattr__(self, "ladder_ms", tuple(sorted(set(self.ladder_ms))))

    def rung(self, attempt: int) -> int:
        return self.ladder_ms[min(attempt - 1, len(self.ladder_ms) - 1)]

    def delay_ms(self, attempt: int) -> int | None:
        """Delay before retry number `attempt` (1-based); None once the budget is spent."""
        spent = sum(self.rung(n) for n in range(1, attempt))
        return None if spent >= self.budget_ms else self.rung(attempt)


class OrderedLanes:
    """One lane per ordering key: deliveries with the same key are handled one after another,
    in the order they entered; deliveries with other keys, or none, do not wait.

    `hold(key)` takes its place in the lane before its first suspension point, so the order of
    entering is the order of the calls.
    """

    def __init__(self) -> None:
        self._tails: dict[str, asyncio.Future[None]] = {}

    def __len__(self) -> int:
        return len(self._tails)

    @contextlib.asynccontextmanager
    async def hold(self, key: str | None) -> AsyncIterator[None]:
        if key is None:
            yield
            return
        previous = self._tails.get(key)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tails[key] = mine
        mine.add_done_callback(lambda _: self._forget(key, mine))
        try:
            if previous is not None:
                # Shielded: a cancelled waiter must not cancel the delivery ahead of it.
                await asyncio.shield(previous)
            yield
        finally:
            if previous is None or previous.done():
                mine.set_result(None)
            else:  # cancelled while waiting: the next one still waits for the one ahead
                previous.add_done_callback(lambda _: mine.set_result(None))

    def _forget(self, key: str, done: asyncio.Future[None]) -> None:
        if self._tails.get(key) is done:
            del self._tails[key]


async def dispatch(consumer: str, handlers: Mapping[str, Handler], envelope: Envelope) -> None:
    """Call the consumer's handler of the event's type; raises what the handler raised."""
    handler = handlers.get(envelope.type)
    if handler is None:
        # Bound by an old binding or a newer producer: acknowledged, but never silently.
        log.warning(
            "bus.unknown_type",
            consumer=consumer,
            event_id=str(envelope.event_id),
            type=envelope.type,
            reason="no handler for this type",
        )
        delivery_metrics.unknown_type.labels(consumer=consumer, type=envelope.type).inc()
        return
    await handler(envelope)
    metrics.events_consumed.labels(consumer=consumer, type=envelope.type).inc()


def handler_failed(
    consumer: str, *, event_id: str, event_type: str, attempt: int, error: str, delay_ms: int
) -> None:
    """One line and a count for a failure that will be retried after `delay_ms`."""
    metrics.events_failed.labels(consumer=consumer, type=event_type).inc()
    delivery_metrics.retried.labels(consumer=consumer, delay=str(delay_ms)).inc()
    log.warning(
        "bus.retry",
        consumer=consumer,
        event_id=event_id,
        type=event_type,
        attempt=attempt,
        delay_ms=delay_ms,
        reason=error,
    )


def dead_lettered(consumer: str, *, event_id: str, event_type: str, reason: str) -> None:
    """One line and a count for a message moved to the consumer's dead-letter queue."""
    metrics.events_dead_lettered.labels(consumer=consumer).inc()
    log.error(
        "bus.dead_lettered", consumer=consumer, event_id=event_id, type=event_type, reason=reason
    )


def unreadable(consumer: str, *, event_id: str, event_type: str, reason: str) -> None:
    """One line and a count for a body that is not an envelope; it goes to the DLQ as is."""
    delivery_metrics.unreadable.labels(consumer=consumer).inc()
    metrics.events_dead_lettered.labels(consumer=consumer).inc()
    log.error(
        "bus.unreadable", consumer=consumer, event_id=event_id, type=event_type, reason=reason
    )


def unroutable(envelope: Envelope, reason: str) -> None:
    """One line and a count for a publish the broker returned."""
    delivery_metrics.unroutable.labels(type=envelope.type).inc()
    log.error("bus.unroutable", event_id=str(envelope.event_id), type=envelope.type, reason=reason)
