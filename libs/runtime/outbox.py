"""Transactional outbox and idempotent inbox.

A service writes its events into its own `outbox` table in the same transaction as the state
change (`record_event`); `OutboxRelay` publishes them afterwards with publisher confirms and
marks them sent. A row the broker keeps refusing while it is up is parked after
`park_after` attempts: skipped, logged and counted with its error, so the stream goes on;
`store outbox list|retry` shows and releases parked rows. Consumers record each handled `event_id` in `inbox` inside the transaction
of their handler (`handle_once`), so a redelivered event changes nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, Protocol

import structlog
from prometheus_client import Counter, Gauge
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
    exists,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
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
        # Set when the row failed `park_after` times while the broker was up; skipped since.
        Column("parked_at", UTCDateTime, nullable=True),
        # Rows with the same key are published in order: one parked holds back those after it.
        Column("ordering_key", String(200), nullable=True),
        *outbox_indexes(),
    )


def outbox_indexes() -> list[Index]:
    """The outbox's indexes. Published rows are kept for a week, so the table holds millions
    of rows the relay never reads again: each index the relay uses is partial, over the rows
    it still has to publish, and stays as small as the backlog however much history is kept.
    The migrations create the same (see each service's `outbox_partial_indexes`)."""
    pending = text("published_at IS NULL AND parked_at IS NULL")
    held = text("published_at IS NULL AND parked_at IS NOT NULL")
    published = text("published_at IS NOT NULL")
    return [
        # The relay's batch: unpublished, unparked rows in id order.
        Index("ix_outbox_unpublished", "id", postgresql_where=pending, sqlite_where=pending),
        # Whether a parked row holds back later rows with its ordering key.
        Index(
            "ix_outbox_parked",
            "ordering_key",
            "id",
            postgresql_where=held,
            sqlite_where=held,
        ),
        # Pruning: published rows older than the retention period.
        Index(
            "ix_outbox_published_at",
            "published_at",
            postgresql_where=published,
            sqlite_where=published,
        ),
    ]


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
    session: AsyncSession,
    outbox: Table,
    payload: Event,
    *,
    producer: str,
    ordering_key: str | None = None,
) -> Envelope:
    """Add an event to the outbox within the session's transaction; it is sent after commit.

    Events with the same `ordering_key` (an aggregate's id) are published in the order they
    were recorded, even when one of them is parked.
    """
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
            ordering_key=ordering_key,
        )
    )
    session.info[WAKE_KEY] = True
    return envelope


class Publish(Protocol):
    def __call__(self, envelope: Envelope, *, ordering_key: str | None = None) -> Awaitable[None]:
        """Publish one event with its ordering key (the bus keeps one key's events in order)."""
        ...


BrokerUp = Callable[[], Awaitable[bool]]


@cache
def _parked_total() -> Counter:
    return Counter(
        "store_outbox_parked_total",
        "Outbox rows parked after failing repeatedly while the broker was up.",
        ["service", "type"],
    )


@cache
def _publish_failed_total() -> Counter:
    return Counter(
        "store_outbox_publish_failed_total",
        "Failed publishes of outbox rows (the row stays in the outbox).",
        ["service", "reason"],
    )


@cache
def broker_up_gauge() -> Gauge:
    """1 while a service's broker connection is up, 0 while it is away (degraded)."""
    return Gauge("store_broker_up", "Whether the service's broker connection is up.", ["service"])


def _is_outage(exc: BaseException) -> bool:
    """A connection-level failure (the broker or the way to it), not this row's fault.

    A robust connection may still say "up" while it reconnects, so the error's kind counts too.
    """
    if isinstance(exc, (ConnectionError, OSError, TimeoutError)):
        return True
    words = ("Connection", "Channel", "Closed")
    return any(word in cls.__name__ for cls in type(exc).__mro__ for word in words)


class OutboxRelay:
    """Publishes a service's outbox; safe with several replicas (row locks, SKIP LOCKED).

    Row locks are held for one short batch: the batch stops taking rows once `lock_budget_s`
    has passed, and each publish waits at most `publish_timeout_s` for its confirm.
    """

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        outbox: Table,
        publish: Publish,
        name: str = "",
        broker_up: BrokerUp | None = None,
        poll_interval_s: float = 0.25,
        batch_size: int = 100,
        park_after: int = 10,
        publish_timeout_s: float = 10.0,
        lock_budget_s: float = 2.0,
        keep_published_s: float = 7 * 24 * 3600,
    ) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._outbox = outbox
        self._publish = publish
        self._name = name
        self._broker_up = broker_up
        self._poll_interval_s = poll_interval_s
        self._batch_size = batch_size
        self._park_after = park_after
        self._publish_timeout_s = publish_timeout_s
        self._lock_budget_s = lock_budget_s
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
                log.warning("outbox.relay_failed", service=self._name, exc_info=True)
                sent, self._failed = 0, True
            if self._failed and not sent:
                # The broker or database is away, or only failing rows are left: back off
                # instead of hammering it.
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 5.0)
                continue
            backoff_s = self._poll_interval_s
            # No second look right after a drain: `drain` already went on while batches came
            # back full, and a commit made meanwhile has set the wake-up, so the wait below
            # returns at once. An empty round per commit cost a transaction each.
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
            sent, more, error = await self._publish_batch()
            total += sent
            if error is not None and raise_errors:
                raise error
            if not more:
                return total

    def _pending(self) -> Any:
        """Unpublished, unparked rows in order, minus those held behind a parked row."""
        table = self._outbox
        earlier = table.alias("earlier")
        held = (
            exists()
            .where(
                earlier.c.ordering_key == table.c.ordering_key,
                earlier.c.parked_at.is_not(None),
                earlier.c.published_at.is_(None),
                earlier.c.id < table.c.id,
            )
            .correlate(table)
        )
        query = (
            select(table.c.id, table.c.envelope, table.c.attempts, table.c.ordering_key)
            .where(table.c.published_at.is_(None), table.c.parked_at.is_(None), ~held)
            .order_by(table.c.id)
            .limit(self._batch_size)
        )
        if self._skip_locked:
            query = query.with_for_update(skip_locked=True, of=table)
        return query

    async def _publish_batch(self) -> tuple[int, bool, Exception | None]:
        """One batch: (rows published, whether more may be waiting, the first error).

        The batch's rows are published concurrently, but rows with the same ordering key one
        after another, each only once the broker confirmed the one before it.
        """
        async with self._sessions() as session, session.begin():
            rows = (await session.execute(self._pending())).all()
            if not rows:
                return 0, False, None
            batch = _Batch(deadline=asyncio.get_running_loop().time() + self._lock_budget_s)
            await asyncio.gather(*(self._publish_lane(lane, batch) for lane in _lanes(rows)))
            for row, exc, charge in batch.failures:
                await self._note_failure(session, row, exc, charge=charge)
            if batch.published:
                await session.execute(
                    update(self._outbox)
                    .where(self._outbox.c.id.in_(batch.published))
                    .values(published_at=datetime.now(UTC))
                )
        more = batch.cut_short or (len(rows) == self._batch_size and batch.first_error is None)
        return len(batch.published), more, batch.first_error

    async def _publish_lane(self, rows: list[Any], batch: _Batch) -> None:
        """Publish rows of one ordering key in order; stop at the first that fails."""
        loop = asyncio.get_running_loop()
        for row in rows:
            if batch.broker_away:
                return
            if loop.time() > batch.deadline:
                batch.cut_short = True  # let go of the row locks; the rest go next batch
                return
            try:
                async with asyncio.timeout(self._publish_timeout_s):
                    await self._publish(
                        Envelope.model_validate(row.envelope), ordering_key=row.ordering_key
                    )
            except Exception as exc:
                batch.first_error = batch.first_error or exc
                self._failed = True
                # Everything fails while the broker is away: charge no row, keep the order,
                # and retry the rest later. Otherwise the row is charged and its key held.
                away = batch.broker_away or _is_outage(exc) or not await self._broker_is_up()
                batch.broker_away = batch.broker_away or away
                batch.failures.append((row, exc, not away))
                return
            batch.published.append(row.id)

    async def _broker_is_up(self) -> bool:
        if self._broker_up is None:
            return True
        try:
            up = await self._broker_up()
        except Exception:
            up = False
        broker_up_gauge().labels(service=self._name).set(1 if up else 0)
        return up

    async def _note_failure(
        self, session: AsyncSession, row: Any, exc: Exception, *, charge: bool
    ) -> None:
        """Keep the row with its error; park it once it failed `park_after` times."""
        attempts = row.attempts + (1 if charge else 0)
        park = charge and attempts >= self._park_after
        values: dict[str, Any] = {"attempts": attempts, "last_error": repr(exc)[:500]}
        if park:
            values["parked_at"] = datetime.now(UTC)
        await session.execute(
            update(self._outbox).where(self._outbox.c.id == row.id).values(values)
        )
        event_type = str(row.envelope.get("type", ""))
        reason = "parked" if park else ("refused" if charge else "broker_away")
        _publish_failed_total().labels(service=self._name, reason=reason).inc()
        fields = {
            "service": self._name,
            "outbox_id": row.id,
            "event_id": row.envelope.get("event_id"),
            "type": event_type,
            "attempts": attempts,
            "error": repr(exc)[:500],
        }
        if park:
            _parked_total().labels(service=self._name, type=event_type).inc()
            log.error("outbox.parked", **fields)
        else:
            log.warning("outbox.publish_failed", **fields)

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


@dataclass
class _Batch:
    """What one relay batch published, what failed, and why it stopped."""

    deadline: float
    published: list[int] = field(default_factory=list)
    failures: list[tuple[Any, Exception, bool]] = field(default_factory=list)  # row, error, charge
    first_error: Exception | None = None
    broker_away: bool = False
    cut_short: bool = False


def _lanes(rows: Sequence[Any]) -> list[list[Any]]:
    """The batch's rows by ordering key, in id order; a row without a key is a lane of its own."""
    keyed: dict[str, list[Any]] = {}
    lanes: list[list[Any]] = []
    for row in rows:
        if row.ordering_key is None:
            lanes.append([row])
        elif row.ordering_key in keyed:
            keyed[row.ordering_key].append(row)
        else:
            keyed[row.ordering_key] = [row]
            lanes.append(keyed[row.ordering_key])
    return lanes


@dataclass(frozen=True)
class ParkedRow:
    """An outbox row the relay parked, for an operator to see."""

    id: int
    event_id: str
    type: str
    attempts: int
    last_error: str | None
    created_at: datetime
    parked_at: datetime


async def parked_rows(
    sessions: async_sessionmaker[AsyncSession], outbox: Table, *, limit: int = 100
) -> list[ParkedRow]:
    """Parked rows, oldest first."""
    t = outbox
    query = (
        select(t.c.id, t.c.event_id, t.c.type, t.c.attempts, t.c.last_error)
        .add_columns(t.c.created_at, t.c.parked_at)
        .where(t.c.parked_at.is_not(None), t.c.published_at.is_(None))
        .order_by(t.c.id)
        .limit(limit)
    )
    async with sessions() as session:
        return [ParkedRow(*row) for row in (await session.execute(query)).all()]


async def release_parked(
    sessions: async_sessionmaker[AsyncSession], outbox: Table, ids: Sequence[int] | None = None
) -> int:
    """Give parked rows (all, or those `ids`) back to the relay with a fresh attempt count."""
    t = outbox
    condition = [t.c.parked_at.is_not(None), t.c.published_at.is_(None)]
    if ids is not None:
        condition.append(t.c.id.in_(list(ids)))
    async with sessions() as session, session.begin():
        result = await session.execute(
            update(t).where(*condition).values(parked_at=None, attempts=0)
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
    inbox row and the changes commit together. The inbox row is claimed first, in one
    statement (`INSERT ... ON CONFLICT DO NOTHING`): a second delivery of a handled event
    inserts nothing and changes nothing; two racing deliveries meet on the primary key, the
    second waiting until the first commits (then it inserts nothing) or rolls back (then it
    handles the event itself).
    """
    key = str(event_id)
    dialect = session.get_bind().dialect.name
    claim = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(inbox)
    claimed = await session.execute(
        claim.values(consumer=consumer, event_id=key, handled_at=datetime.now(UTC))
        .on_conflict_do_nothing()
        .returning(inbox.c.event_id)
    )
    if claimed.first() is None:
        metrics.events_duplicate.labels(consumer=consumer).inc()
        return False
    await handle()
    return True


def new_id() -> str:
    return str(uuid.uuid4())
