"""What every service process needs at run time, wired from settings: database with outbox
and inbox, the bus, Redis, other services' clients. Built by a service's `build_deps`, started
and stopped by its app's lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import structlog
from sqlalchemy import MetaData, Table, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from libs.contracts.envelope import Envelope, Event
from libs.runtime.bus import EventBus, RetryPolicy, create_bus
from libs.runtime.db import create_engine, session_factory
from libs.runtime.http import ServiceDirectory
from libs.runtime.migrations import upgrade
from libs.runtime.observability import set_correlation_id
from libs.runtime.outbox import (
    WAKE_KEY,
    OutboxRelay,
    broker_up_gauge,
    handle_once,
    inbox_table,
    outbox_table,
    record_event,
)
from libs.runtime.redis import create_redis
from libs.runtime.settings import RuntimeSettings
from libs.runtime.telemetry import Telemetry

log = structlog.get_logger(__name__)

AFTER_COMMIT_KEY = "store.after_commit"

P = TypeVar("P", bound=Event)
EventHandler = Callable[[Any, AsyncSession, Any], Awaitable[None]]
"""A consumer: `handler(service, session, event)`, one per event type in a service's HANDLERS."""


@dataclass(frozen=True)
class Shared:
    """What the services of one process share in embedded mode: the bus, Redis, the directory."""

    bus: EventBus
    fake_redis_server: Any
    directory: ServiceDirectory
    composed: bool = False  # True when a composer (embedded mode) starts and stops the bus
    telemetry: Telemetry = field(default_factory=Telemetry)  # traces; off unless configured


def shared_for(
    settings: RuntimeSettings, *, composed: bool = False, telemetry: Telemetry | None = None
) -> Shared:
    """Adapters for one process; in embedded mode pass the same `Shared` to every service."""
    import fakeredis

    telemetry = telemetry or Telemetry.from_env()
    retry = RetryPolicy(
        settings.consumer_retry_ladder_ms, round(settings.consumer_retry_budget_s * 1000)
    )
    return Shared(
        bus=create_bus(
            settings.broker_url,
            exchange=settings.exchange,
            queue_prefix=settings.queue_prefix,
            retry=retry,
            concurrency=settings.consumer_concurrency,
        ),
        fake_redis_server=fakeredis.FakeServer(),
        directory=ServiceDirectory(
            urls=settings.service_urls(),
            timeout_s=settings.http_timeout_s,
            service_token=settings.service_token,
            telemetry=telemetry,
        ),
        composed=composed,
        telemetry=telemetry,
    )


class ServiceSettings(Protocol):
    """What every service's settings class offers the runtime."""

    runtime: RuntimeSettings
    database_pool_size: int | None

    def resolved_database_url(self) -> str: ...


@dataclass
class Runtime:
    """One service's plumbing. Business code uses `transaction`, `record` and `subscribe`."""

    name: str
    settings: RuntimeSettings
    metadata: MetaData
    database_url: str
    migrations_dir: Path
    shared: Shared
    migrate_on_start: bool = False
    uses_redis: bool = False
    pool_size: int | None = None  # the service's own pool size; else `settings.db_pool_size`
    engine: AsyncEngine = field(init=False)
    sessions: async_sessionmaker[AsyncSession] = field(init=False)
    outbox: Table = field(init=False)
    inbox: Table = field(init=False)
    relay: OutboxRelay = field(init=False)
    redis: Any = field(init=False, default=None)
    _owns_bus: bool = field(init=False, default=True)
    _bus_task: asyncio.Task[None] | None = field(init=False, default=None)
    _started: bool = field(init=False, default=False)

    @classmethod
    def for_service(
        cls,
        *,
        name: str,
        settings: ServiceSettings,
        metadata: MetaData,
        migrations_dir: Path,
        shared: Shared,
        uses_redis: bool = False,
    ) -> Runtime:
        """A service's runtime from its settings: its database, migrated on start when embedded."""
        return cls(
            name=name,
            settings=settings.runtime,
            metadata=metadata,
            database_url=settings.resolved_database_url(),
            migrations_dir=migrations_dir,
            shared=shared,
            migrate_on_start=settings.runtime.embedded,
            uses_redis=uses_redis,
            pool_size=settings.database_pool_size,
        )

    def __post_init__(self) -> None:
        # Not `get(...) or ...`: a Table refuses to be used as a boolean.
        tables = self.metadata.tables
        self.outbox = tables["outbox"] if "outbox" in tables else outbox_table(self.metadata)
        self.inbox = tables["inbox"] if "inbox" in tables else inbox_table(self.metadata)
        self.engine = create_engine(
            self.database_url,
            pool_size=self.pool_size or self.settings.db_pool_size,
            pool_timeout_s=self.settings.pool_wait_s,
        )
        self.sessions = session_factory(self.engine)
        self.relay = OutboxRelay(
            engine=self.engine,
            outbox=self.outbox,
            publish=self._publish,
            name=self.name,
            broker_up=self.bus.ping,
            poll_interval_s=self.settings.outbox_poll_interval_ms / 1000,
            park_after=self.settings.outbox_park_after,
        )
        if self.uses_redis:
            self.redis = create_redis(
                self.settings.redis_url, fake_server=self.shared.fake_redis_server
            )

    @property
    def bus(self) -> EventBus:
        return self.shared.bus

    @property
    def telemetry(self) -> Telemetry:
        return self.shared.telemetry

    def client(self, service: str) -> Any:
        """The pooled client of another service."""
        return self.shared.directory.client(service)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: commits on success (events included), then wakes the relay."""
        async with self.sessions() as session:
            async with session.begin():
                yield session
            if session.info.pop(WAKE_KEY, False):
                self.relay.notify()
            for action in session.info.pop(AFTER_COMMIT_KEY, ()):
                try:
                    await action()
                except Exception as exc:  # best effort: what must happen is recorded already
                    log.warning("after_commit.failed", action=repr(action), error=repr(exc))

    def after_commit(self, session: AsyncSession, action: Callable[[], Awaitable[None]]) -> None:
        """Run `action` once the session's transaction has committed (never if it rolls back).

        For what the committed state asks of the outside world (close a provider's checkout,
        send a refund): best effort, since each such step is also retried by its own sweep."""
        session.info.setdefault(AFTER_COMMIT_KEY, []).append(action)

    async def record(
        self, session: AsyncSession, payload: Event, *, ordering_key: str | None = None
    ) -> Envelope:
        """Publish `payload` when (and only if) the session's transaction commits.

        Events sharing an `ordering_key` (an aggregate's id) are published in recorded order.
        """
        with self.telemetry.producing(self.name, payload.event_type) as span:
            envelope = await record_event(
                session, self.outbox, payload, producer=self.name, ordering_key=ordering_key
            )
            span.set_attribute("messaging.message.id", str(envelope.event_id))
        return envelope

    async def _publish(self, envelope: Envelope, *, ordering_key: str | None = None) -> None:
        with self.telemetry.publishing(self.name, envelope):
            await self.bus.publish(envelope, ordering_key=ordering_key)

    def subscribe(self, service: object, handlers: Mapping[type[Event], EventHandler]) -> None:
        """Handle `service`'s HANDLERS exactly once per event id, each in its own transaction."""
        wrapped = {
            model.event_type: self._once(model, service, handler)
            for model, handler in handlers.items()
        }
        self.bus.subscribe(self.name, wrapped)

    def _once(
        self, model: type[Event], service: object, handler: EventHandler
    ) -> Callable[[Envelope], Awaitable[None]]:
        async def deliver(envelope: Envelope) -> None:
            set_correlation_id(envelope.correlation_id)
            payload = model.model_validate(envelope.payload)
            with self.telemetry.consuming(self.name, envelope):
                async with self.transaction() as session:
                    handled = await handle_once(
                        session,
                        self.inbox,
                        consumer=self.name,
                        event_id=envelope.event_id,
                        handle=lambda: handler(service, session, payload),
                    )
                if not handled:
                    log.info("event.duplicate", event_id=str(envelope.event_id), type=envelope.type)

        return deliver

    async def start(self) -> None:
        """Migrate (embedded), connect the bus (retrying in the background), start the relay."""
        if self._started:
            return
        self._started = True
        owns_bus = self._owns_bus = not self.shared.composed
        if self.migrate_on_start:
            await upgrade(self.engine, self.migrations_dir)
        if owns_bus:
            self._bus_task = asyncio.create_task(self._connect_bus(), name=f"{self.name}-bus")
        await self.relay.start()

    async def _connect_bus(self) -> None:
        delay = 0.5
        while True:
            try:
                await self.bus.start()
                log.info("bus.connected", service=self.name)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("bus.unreachable", service=self.name, error=repr(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        await self.relay.stop()
        if self._bus_task is not None:
            self._bus_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._bus_task
        if self._owns_bus:
            await self.bus.stop()
            await self.shared.directory.aclose()
            self.telemetry.shutdown()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()

    async def readiness(self) -> dict[str, bool]:
        """Which backing services answer right now."""
        checks: dict[str, Callable[[], Awaitable[Any]]] = {
            "database": self._ping_database,
            "broker": self._ping_bus,
        }
        if self.redis is not None:
            checks["redis"] = self.redis.ping
        results: dict[str, bool] = {}
        for name, check in checks.items():
            try:
                results[name] = bool(await asyncio.wait_for(check(), 2.0))
            except Exception:
                results[name] = False
        broker_up_gauge().labels(service=self.name).set(1 if results["broker"] else 0)
        return results

    async def _ping_database(self) -> bool:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return True

    async def _ping_bus(self) -> bool:
        return await self.bus.ping()
