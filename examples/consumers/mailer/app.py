"""Mailer: tells a shopper when a payment did not go through.

A consumer of another team, built on FastStream and the `store-contracts` package only. Its
own durable queue on Store's topic exchange is bound to `payments.payment.failed.v1`. Delivery is at least once: the outbox of mails and the handled
`event_id`s are written in one SQLite transaction, so a redelivered event sends no second mail.
A handler error leaves the message on the queue (nack); after `max_deliveries` it goes to
`<queue>.dlq`.

Run it: `faststream run examples.consumers.mailer.app:main --factory`.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from faststream import AckPolicy, FastStream
from faststream.rabbit import ExchangeType, QueueType, RabbitBroker, RabbitExchange, RabbitQueue

from libs.contracts.envelope import Envelope
from libs.contracts.events import PaymentFailed


@dataclass(frozen=True)
class Settings:
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    exchange: str = "store.events"
    queue: str = "mailer.payment-problems"
    database: Path = Path("mailer.db")
    max_deliveries: int = 5

    @classmethod
    def from_env(cls) -> Settings:
        """MAILER_AMQP_URL, MAILER_EXCHANGE, MAILER_QUEUE, MAILER_DATABASE."""
        env = os.environ
        return cls(
            amqp_url=env.get("MAILER_AMQP_URL", cls.amqp_url),
            exchange=env.get("MAILER_EXCHANGE", cls.exchange),
            queue=env.get("MAILER_QUEUE", cls.queue),
            database=Path(env.get("MAILER_DATABASE", str(cls.database))),
        )


@dataclass(frozen=True)
class Mail:
    order_id: str
    template: str


class Outbox:
    """Mails to send (a sender process drains it) and the events already handled."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path)
        self._db.executescript(
            "CREATE TABLE IF NOT EXISTS handled_events (event_id TEXT PRIMARY KEY);"
            "CREATE TABLE IF NOT EXISTS mails (order_id TEXT, template TEXT)"
        )

    def queue_once(self, event_id: str, mail: Mail) -> bool:
        """Queue `mail` unless `event_id` was handled; True if this call queued it."""
        try:
            with self._db:  # the handled event and its mail commit together, or neither
                self._db.execute("INSERT INTO handled_events VALUES (?)", (event_id,))
                self._db.execute("INSERT INTO mails VALUES (?, ?)", (mail.order_id, mail.template))
        except sqlite3.IntegrityError:  # handled before: a redelivery
            return False
        return True

    def mails(self) -> list[Mail]:
        """Every mail queued so far."""
        return [Mail(*row) for row in self._db.execute("SELECT * FROM mails ORDER BY rowid")]

    def close(self) -> None:
        self._db.close()


@dataclass(frozen=True)
class Mailer:
    app: FastStream
    broker: RabbitBroker
    outbox: Outbox


def create_mailer(settings: Settings) -> Mailer:
    """The app: its broker, its queue and its handler; nothing connects until it starts."""
    broker = RabbitBroker(settings.amqp_url)
    outbox = Outbox(settings.database)
    exchange = RabbitExchange(settings.exchange, type=ExchangeType.TOPIC, durable=True)
    queue = RabbitQueue(
        settings.queue,
        queue_type=QueueType.QUORUM,
        durable=True,
        routing_key=PaymentFailed.event_type,
        arguments={
            "x-delivery-limit": settings.max_deliveries,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": f"{settings.queue}.dlq",
        },
    )

    @broker.subscriber(queue, exchange, ack_policy=AckPolicy.NACK_ON_ERROR)
    async def on_payment_failed(envelope: Envelope) -> None:
        """Queue one mail per failed payment."""
        if envelope.type == PaymentFailed.event_type:
            failed = PaymentFailed.model_validate(envelope.payload)
            outbox.queue_once(str(envelope.event_id), Mail(failed.order_id, "payment-failed"))

    app = FastStream(broker)

    @app.after_startup
    async def declare_dead_letter_queue() -> None:
        # Where a message that keeps failing waits for an operator (nothing consumes it).
        await broker.declare_queue(RabbitQueue(f"{settings.queue}.dlq", durable=True))

    @app.after_shutdown
    async def close() -> None:  # async: run in the loop's thread, which owns the connection
        outbox.close()

    return Mailer(app, broker, outbox)


def main() -> FastStream:
    """Entry point for `faststream run ... --factory`."""
    return create_mailer(Settings.from_env()).app
