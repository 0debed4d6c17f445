"""Fulfilment: ships the shippable lines of every paid order.

A consumer of another team, built on FastStream and the `store-contracts` package only. It
declares its own durable queue on Store's topic exchange, bound to `orders.order.paid.v1`.
Delivery is at least once, so it remembers each handled `event_id` in the same SQLite
transaction as the shipment it creates: a redelivered event ships nothing twice. A handler
error leaves the message on the queue (nack); after `max_deliveries` it goes to `<queue>.dlq`.

Run it: `faststream run examples.consumers.fulfilment.app:main --factory`.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from faststream import AckPolicy, FastStream
from faststream.rabbit import ExchangeType, QueueType, RabbitBroker, RabbitExchange, RabbitQueue

from libs.contracts.envelope import Envelope
from libs.contracts.events import OrderPaid


@dataclass(frozen=True)
class Settings:
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    exchange: str = "store.events"
    queue: str = "fulfilment.orders-paid"
    database: Path = Path("fulfilment.db")
    max_deliveries: int = 5

    @classmethod
    def from_env(cls) -> Settings:
        """FULFILMENT_AMQP_URL, FULFILMENT_EXCHANGE, FULFILMENT_QUEUE, FULFILMENT_DATABASE."""
        env = os.environ
        return cls(
            amqp_url=env.get("FULFILMENT_AMQP_URL", cls.amqp_url),
            exchange=env.get("FULFILMENT_EXCHANGE", cls.exchange),
            queue=env.get("FULFILMENT_QUEUE", cls.queue),
            database=Path(env.get("FULFILMENT_DATABASE", str(cls.database))),
        )


@dataclass(frozen=True)
class Shipment:
    order_id: str
    order_number: str
    product_key: str
    quantity: int


class Shipments:
    """Shipments to make, and the events already handled, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path)
        self._db.executescript(
            "CREATE TABLE IF NOT EXISTS handled (event_id TEXT PRIMARY KEY);"
            "CREATE TABLE IF NOT EXISTS shipments (order_id TEXT, order_number TEXT,"
            " product_key TEXT, quantity INTEGER)"
        )

    def ship_once(self, event_id: str, shipments: list[Shipment]) -> bool:
        """Record the shipments unless `event_id` was handled; True if this call did it."""
        with self._db:  # one transaction: the event id and its shipments, or neither
            seen = self._db.execute("SELECT 1 FROM handled WHERE event_id = ?", (event_id,))
            if seen.fetchone():
                return False
            self._db.execute("INSERT INTO handled VALUES (?)", (event_id,))
            self._db.executemany(
                "INSERT INTO shipments VALUES (?, ?, ?, ?)",
                [(s.order_id, s.order_number, s.product_key, s.quantity) for s in shipments],
            )
        return True

    def all(self) -> list[Shipment]:
        """Every shipment recorded so far."""
        rows = self._db.execute("SELECT * FROM shipments ORDER BY rowid").fetchall()
        return [Shipment(*row) for row in rows]

    def close(self) -> None:
        self._db.close()


def shipments_of(paid: OrderPaid) -> list[Shipment]:
    """One shipment per shippable line; services and digital goods are not shipped."""
    return [
        Shipment(paid.order_id, paid.number, line.product_key, line.quantity)
        for line in paid.lines
        if line.shippable
    ]


@dataclass(frozen=True)
class Fulfilment:
    app: FastStream
    broker: RabbitBroker
    shipments: Shipments


def create_fulfilment(settings: Settings) -> Fulfilment:
    """The app: its broker, its queue and its handler; nothing connects until it starts."""
    broker = RabbitBroker(settings.amqp_url)
    shipments = Shipments(settings.database)
    exchange = RabbitExchange(settings.exchange, type=ExchangeType.TOPIC, durable=True)
    queue = RabbitQueue(
        settings.queue,
        queue_type=QueueType.QUORUM,
        durable=True,
        routing_key=OrderPaid.event_type,
        arguments={
            "x-delivery-limit": settings.max_deliveries,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": f"{settings.queue}.dlq",
        },
    )
    dead_letters = RabbitQueue(f"{settings.queue}.dlq", durable=True)

    @broker.subscriber(queue, exchange, ack_policy=AckPolicy.NACK_ON_ERROR)
    async def on_order_paid(envelope: Envelope) -> None:
        """Ship the paid order's shippable lines, once per event."""
        if envelope.type != OrderPaid.event_type:
            return
        paid = OrderPaid.model_validate(envelope.payload)
        shipments.ship_once(str(envelope.event_id), shipments_of(paid))

    app = FastStream(broker)

    @app.after_startup
    async def declare_dead_letter_queue() -> None:
        # Where a message that keeps failing waits for an operator (nothing consumes it).
        await broker.declare_queue(dead_letters)

    @app.after_shutdown
    async def close() -> None:  # async: run in the loop's thread, which owns the connection
        shipments.close()

    return Fulfilment(app, broker, shipments)


def main() -> FastStream:
    """Entry point for `faststream run ... --factory`."""
    return create_fulfilment(Settings.from_env()).app
