"""Names on the broker: the exchange, and which consumer (queue) takes which event types.

Each service's `SUBSCRIPTIONS` must match its entry here (a contract test checks it); the
AsyncAPI document is generated from this and the payload models.
"""

from __future__ import annotations

DEFAULT_EXCHANGE = "store.events"

CONSUMERS: dict[str, tuple[str, ...]] = {
    "catalog": ("cart.cart.checked_out.v1",),
    "cart": (
        "catalog.pricing.changed.v1",
        "catalog.product.changed.v1",
        "orders.order.created.v1",
        "orders.order.paid.v1",
    ),
    "orders": ("payments.payment.succeeded.v1", "identity.anonymous.merged.v1"),
    "payments": ("identity.anonymous.merged.v1",),
}


def producer_of(event_type: str) -> str:
    """The service that publishes an event type (its first segment; identity events: cart)."""
    service = event_type.split(".")[0]
    return "cart" if service == "identity" else service


def queue_name(prefix: str, consumer: str) -> str:
    """`<prefix>.<consumer>`, with `.retry` and `.dlq` queues beside it."""
    return f"{prefix}.{consumer}"
