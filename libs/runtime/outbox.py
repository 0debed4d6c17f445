"""Transactional outbox and idempotent inbox.

A service writes its events into its own `outbox` table in the same transaction as the state
change (`record_event`); `OutboxRelay` publishes them afterwards with publisher confirms and
marks them sent. Consumers record each handled `event_id` in `inbox` inside the transaction
of their handler (`handle_once`), so a redelivered event changes nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from libs.contracts.envelope import Envelope, Event
from libs.runtime.db import JSONType, UTCDateTime, is_sqlite
from libs.runtime.observability import current_correlation_id, metrics
from libs.runtime.telemetry import trace_context

log = structlog.get_logger(__name__)

WAKE_KEY = "store.outbox.wake"


def outbox_table(metadata: MetaData) -> Table:
    """The outbox of one service, in that service's own metadata."""
    return Table(
        "outbox",
        metadata,
        Column(
            "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("type", String(120), nullable=False),
        Column("envelope", JSONType, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("published_at", UTCDateTime, nullable=True),
        Column("attempts", Integer, nullable=False, default=0),
        Column("last_error", Text, nullable=True),
        Index("ix_outbox_pending", "published_at", "id"),
    )


def inbox_table(metadata: MetaData) -> Table:
    """Event ids a consumer already handled, per consumer."""
    return Table(
        "inbox",
        metadata,
        Column("consumer", String(120), nullable=False),
        Column("event_id", String(36), nullable=False),
        Column("handled_at", UTCDateTime, nullable=False),
        PrimaryKeyConstraint("consumer", "event_id"),
    )


async def record_event(
    session: AsyncSession, outbox: Table, payload: Event, *, producer: str
) -> Envelope:
    """Add an event to the outbox within the session's transaction; it is sent after commit."""
    envelope = Envelope.wrap(
        payload, producer=producer, correlation_id=current_correlation_id(), **trace_context()
    )
    await session.execute(
        insert(outbox).values(
            event_id=str(envelope.event_id),
            type=envelope.type,
            envelope=envelope.model_dump(mode="json"),
            created_at=envelope.occurred_at,
            attempts=0,
        )
    )
    session.info[WAKE_KEY] = True
    return envelope


Publish = Callable[[Envelope], Awaitable[None]]


class OutboxRelay:
    """Publishes a service's outbox; safe with several replicas (row locks, SKIP LOCKED)."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        outbox: Table,
        publish: Publish,
        poll_interval_s: float = 0.25,
        batch_size: int = 100,
        keep_published_s: float = 7 * 24 * 3600,
    ) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._outbox = outbox
        self._publish = publish
        self._poll_interval_s = poll_interval_s
        self._batch_size = batch_size
        self._keep_published_s = keep_published_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._skip_locked = not is_sqlite(str(engine.url))
        self._failed = False
        self._last_prune = float("-inf")
        self._stopping = False

    def notify(self) -> None:
        """Wake the relay now: something was committed to the outbox."""
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            # Let a batch in progress finish first: cancelling it inside its transaction can
            # leave a SQLite connection holding the write lock, and the drain below waits on it.
            self._stopping = True
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 10)
            except TimeoutError:
                self._task.cancel()
                try:
                    await self._task
                except asyncio.CancelledError:
                    pass
            self._task = None
        await self.drain(raise_errors=False)

    async def _run(self) -> None:
        backoff_s = self._poll_interval_s
        while not self._stopping:
            self._failed = False
            try:
                sent = await self.drain(raise_errors=False)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be away for a moment; keep the relay alive
                log.warning("outbox.relay_failed", exc_info=True)
                sent, self._failed = 0, True
            if self._failed:
                # The broker or database is away: back off instead of hammering it.
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 5.0)
                continue
            backoff_s = self._poll_interval_s
            if sent:
                continue
            await self._prune_now_and_then()
            try:
                await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)
            except TimeoutError:
                pass
            self._wake.clear()

    async def drain(self, *, raise_errors: bool = True) -> int:
        """Publish every pending event now; returns how many were published."""
        total = 0
        while True:
            sent, more = await self._publish_batch(raise_errors=raise_errors)
            total += sent
            if not more:
                return total

    async def _publish_batch(self, *, raise_errors: bool) -> tuple[int, bool]:
        table = self._outbox
        query = (
            select(table.c.id, table.c.envelope)
            .where(table.c.published_at.is_(None))
            .order_by(table.c.id)
            .limit(self._batch_size)
        )
        if self._skip_locked:
            query = query.with_for_update(skip_locked=True)
        async with self._sessions() as session, session.begin():
            rows = (await session.execute(query)).all()
            if not rows:
                return 0, False
            published: list[int] = []
            for row_id, body in rows:
                try:
                    await self._publish(Envelope.model_validate(body))
                except Exception as exc:
                    await session.execute(
                        update(table)
                        .where(table.c.id == row_id)
                        .values(attempts=table.c.attempts + 1, last_error=repr(exc)[:500])
                    )
                    log.warning("outbox.publish_failed", outbox_id=row_id, error=repr(exc))
                    self._failed = True
                    if raise_errors:
                        raise
                    # Keep order: stop at the first failure, retry the rest next round.
                    break
                published.append(row_id)
            if published:
                await session.execute(
                    update(table)
                    .where(table.c.id.in_(published))
                    .values(published_at=datetime.now(UTC))
                )
        return len(published), len(published) == len(rows) == self._batch_size

    async def _prune_now_and_then(self) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._last_prune < 3600:
            return
        self._last_prune = now
        try:
            pruned = await self.prune()
        except Exception:  # pruning is housekeeping; never let it stop publishing
            log.warning("outbox.prune_failed", exc_info=True)
            return
        if pruned:
            log.info("outbox.pruned", rows=pruned)

    async def prune(self) -> int:
        """Forget events published longer ago than the retention period."""
        cutoff = datetime.now(UTC).timestamp() - self._keep_published_s
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                delete(self._outbox).where(
                    self._outbox.c.published_at < datetime.fromtimestamp(cutoff, UTC)
                )
            )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def handle_once(
    session: AsyncSession,
    inbox: Table,
    *,
    consumer: str,
    event_id: uuid.UUID | str,
    handle: Callable[[], Awaitable[Any]],
) -> bool:
    """Run `handle` unless this consumer already handled `event_id`; True if it ran.

    Must be called inside the transaction that also holds the handler's changes, so the
    inbox row and the changes commit together. Two racing deliveries of one event: the second
    insert fails on the primary key and its transaction rolls back.
    """
    key = str(event_id)
    seen = await session.execute(
        select(inbox.c.event_id).where(inbox.c.consumer == consumer, inbox.c.event_id == key)
    )
    if seen.first() is not None:
        metrics.events_duplicate.labels(consumer=consumer).inc()
        return False
    await handle()
    try:
        async with session.begin_nested():
            await session.execute(
                insert(inbox).values(consumer=consumer, event_id=key, handled_at=datetime.now(UTC))
            )
    except IntegrityError:
        raise DuplicateDelivery(key) from None
    return True


class DuplicateDelivery(Exception):
    """Another delivery of the same event committed first; this one must roll back."""


def new_id() -> str:
    return str(uuid.uuid4())
