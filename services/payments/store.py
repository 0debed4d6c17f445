"""The payments repository: its protocol and the SQL adapter (SQLite and PostgreSQL).

One repository works inside one transaction (`runtime.transaction()`); the service decides
where transactions begin and end. Row locks (`FOR UPDATE`) serialize what must not race on
PostgreSQL; SQLite serializes writers anyway (BEGIN IMMEDIATE) and ignores them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.contracts.common import Owner
from libs.contracts.payments import Address, BillingDetails, PaymentLine
from services.payments.domain import MOVES_FROM
from services.payments.tables import (
    customers,
    disputes,
    order_payments,
    payment_attempts,
    provider_customers,
    provider_events,
    refunds,
    subscription_past_dues,
    subscription_renewals,
    subscriptions,
)

# --- records ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerRecord:
    id: str
    owner: Owner
    organization_id: str | None
    details: BillingDetails
    is_default: bool
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None


@dataclass(frozen=True)
class OrderPaymentRecord:
    order_id: str
    order_number: str
    paid_attempt_id: str | None
    paid_at: datetime | None
    canceled_at: datetime | None = None


@dataclass(frozen=True)
class AttemptRecord:
    id: str
    order_id: str
    order_number: str
    owner: Owner
    customer_id: str
    status: str
    mode: str
    total: int
    currency: str
    lines: tuple[PaymentLine, ...]
    statement_descriptor: str | None
    success_url: str
    cancel_url: str
    provider: str
    provider_session_id: str | None
    checkout_url: str | None
    expires_at: datetime | None
    provider_payment_status: str | None
    provider_reference: str | None
    provider_subscription_id: str | None
    failure_reason: str | None
    refund_required: bool
    refund_reason: str | None
    created_at: datetime
    updated_at: datetime
    paid_at: datetime | None
    reconcile_after: datetime | None = None
    reconcile_checks: int = 0
    # The order's lines as frozen in the order ({pricing_id, quantity, total}); None for
    # attempts made before they were kept, and for renewals.
    order_lines: tuple[dict[str, Any], ...] | None = None

    def is_open(self, now: datetime) -> bool:
        """Still payable: unpaid and not past its expiry."""
        return self.status == "unpaid" and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True)
class SubscriptionRecord:
    id: str
    owner: Owner
    order_id: str
    attempt_id: str
    customer_id: str
    provider: str
    provider_subscription_id: str
    status: str
    interval: str
    interval_count: int
    amount: int
    currency: str
    current_period_end: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None
    ended_at: datetime | None
    provider_updated_at: datetime | None
    created_at: datetime
    updated_at: datetime
    renewals_checked_at: datetime | None = None


@dataclass(frozen=True)
class RefundRecord:
    id: str
    attempt_id: str
    order_id: str
    provider: str
    provider_reference: str | None
    amount: int
    currency: str
    reason: str
    status: str  # pending | succeeded | failed | canceled
    provider_refund_id: str | None
    last_error: str | None
    failure_reason: str | None
    tries: int
    next_try_at: datetime | None
    created_at: datetime
    updated_at: datetime
    idempotency_key: str = ""
    actor: str | None = None
    note: str | None = None
    request_hash: str | None = None
    lines: list[dict[str, Any]] | None = None

    @property
    def counts(self) -> bool:
        """Money that is going back or went back: what an operator can no longer refund."""
        return self.status in ("pending", "succeeded")


@dataclass(frozen=True)
class DisputeRecord:
    id: str
    provider: str
    provider_dispute_id: str
    attempt_id: str | None
    order_id: str | None
    amount: int
    currency: str
    reason: str
    status: str
    evidence_due_by: datetime | None
    opened_at: datetime
    closed_at: datetime | None
    updated_at: datetime


def _customer(row: RowMapping) -> CustomerRecord:
    return CustomerRecord(
        id=row["id"],
        owner=Owner(kind=row["owner_kind"], id=row["owner_id"]),
        organization_id=row["organization_id"],
        details=BillingDetails(
            name=row["name"],
            email=row["email"],
            address=Address(
                line1=row["line1"],
                line2=row["line2"],
                city=row["city"],
                postal_code=row["postal_code"],
                state=row["state"],
                country=row["country"],
            ),
            vat_id=row["vat_id"],
        ),
        is_default=bool(row["is_default"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        deleted_at=row["deleted_at"],
    )


def _attempt(row: RowMapping) -> AttemptRecord:
    values = dict(row)
    owner = Owner(kind=values.pop("owner_kind"), id=values.pop("owner_id"))
    lines = tuple(PaymentLine.model_validate(line) for line in values.pop("lines"))
    values["refund_required"] = bool(values["refund_required"])
    order_lines = values.pop("order_lines", None)
    values["order_lines"] = None if order_lines is None else tuple(order_lines)
    return AttemptRecord(owner=owner, lines=lines, **values)


# Subscriptions the provider still bills: reconciliation asks about their paid invoices.
RENEWING_STATUSES = ("active", "past_due", "trialing")


def _subscription(row: RowMapping) -> SubscriptionRecord:
    values = dict(row)
    owner = Owner(kind=values.pop("owner_kind"), id=values.pop("owner_id"))
    values["cancel_at_period_end"] = bool(values["cancel_at_period_end"])
    return SubscriptionRecord(owner=owner, **values)


def _insert_ignoring_conflicts(session: AsyncSession, table: Any) -> Any:
    """`INSERT ... ON CONFLICT DO NOTHING` in the session's dialect (PostgreSQL or SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def _owner_is(table: Any, owner: Owner) -> Any:
    return and_(table.c.owner_kind == owner.kind, table.c.owner_id == owner.id)


def _insert_ignoring(
    session: AsyncSession, table: Any, *, index_elements: list[str], index_where: Any = None
) -> Any:
    """`INSERT ... ON CONFLICT (index) DO NOTHING` in the session's dialect."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(
        index_elements=index_elements, index_where=index_where
    )


class DuplicateProviderEvent(Exception):
    """This provider event was already applied (or is being applied right now)."""


# --- the port --------------------------------------------------------------------------------


class PaymentsRepository(Protocol):
    """What the payments service needs from storage, inside one transaction."""

    async def get_customer(
        self, customer_id: str, *, include_deleted: bool = False
    ) -> CustomerRecord | None: ...
    async def list_customers(self, owner: Owner) -> list[CustomerRecord]: ...
    async def default_customer(self, owner: Owner) -> CustomerRecord | None: ...
    async def lock_owner(self, owner: Owner) -> None: ...
    async def add_customer(self, record: CustomerRecord) -> CustomerRecord: ...
    async def delete_customer(self, customer_id: str, now: datetime) -> None: ...
    async def promote_oldest(self, owner: Owner, now: datetime) -> CustomerRecord | None: ...
    async def make_default(self, record: CustomerRecord, now: datetime) -> list[str]: ...
    async def reassign_customers(
        self, source: Owner, target: Owner, now: datetime
    ) -> list[str]: ...
    async def provider_customer_id(self, customer_id: str, provider: str) -> str | None: ...
    async def customer_for_payment(
        self, customer_id: str, provider: str
    ) -> tuple[CustomerRecord, str | None] | None: ...
    async def save_provider_customer(
        self, customer_id: str, provider: str, provider_customer_id: str, now: datetime
    ) -> str: ...
    async def lock_order(
        self, order_id: str, *, order_number: str | None = None, now: datetime | None = None
    ) -> OrderPaymentRecord | None: ...
    async def open_order(
        self, order_id: str, *, order_number: str, now: datetime
    ) -> OrderPaymentRecord: ...
    async def set_order_paid(self, order_id: str, attempt_id: str, now: datetime) -> bool: ...
    async def set_order_canceled(self, order_id: str, now: datetime) -> None: ...
    async def add_attempt(self, **values: Any) -> AttemptRecord: ...
    async def get_attempt(self, attempt_id: str) -> AttemptRecord | None: ...
    async def attempt_by_session(self, session_id: str) -> AttemptRecord | None: ...
    async def attempt_by_provider_subscription(
        self, subscription_id: str
    ) -> AttemptRecord | None: ...
    async def unpaid_attempts(self, order_id: str) -> list[AttemptRecord]: ...
    async def cancel_unpaid_attempts(
        self, order_id: str, now: datetime, *, reason: str
    ) -> list[tuple[str, str | None]]: ...
    async def cancel_open_attempts(
        self, order_id: str, now: datetime, *, reason: str
    ) -> list[tuple[str, str | None]]: ...
    async def attempts_for_order(self, order_id: str) -> list[AttemptRecord]: ...
    async def set_session(
        self,
        attempt_id: str,
        *,
        session_id: str,
        url: str,
        expires_at: datetime | None,
        now: datetime,
    ) -> AttemptRecord | None: ...
    async def transition(
        self, attempt_id: str, target: str, now: datetime, **values: Any
    ) -> AttemptRecord | None: ...
    async def update_attempt(self, attempt_id: str, now: datetime, **values: Any) -> None: ...
    async def reassign_attempts(self, source: Owner, target: Owner, now: datetime) -> int: ...
    async def get_subscription(self, subscription_id: str) -> SubscriptionRecord | None: ...
    async def subscription_by_provider_id(
        self, provider: str, provider_subscription_id: str
    ) -> SubscriptionRecord | None: ...
    async def subscription_by_attempt(self, attempt_id: str) -> SubscriptionRecord | None: ...
    async def list_subscriptions(self, owner: Owner) -> list[SubscriptionRecord]: ...
    async def add_subscription(self, **values: Any) -> SubscriptionRecord: ...
    async def update_subscription(
        self, subscription_id: str, now: datetime, **values: Any
    ) -> None: ...
    async def mark_cancellation_announced(self, subscription_id: str, now: datetime) -> bool: ...
    async def add_renewal(self, **values: Any) -> bool: ...
    async def add_past_due(self, **values: Any) -> bool: ...
    async def renewal_counts(self, subscription_ids: Sequence[str]) -> dict[str, int]: ...
    async def claim_subscriptions_to_reconcile(
        self, *, now: datetime, checked_before: datetime, limit: int
    ) -> list[tuple[SubscriptionRecord, datetime | None]]: ...
    async def reassign_subscriptions(self, source: Owner, target: Owner, now: datetime) -> int: ...
    async def record_provider_event(
        self, provider: str, event_id: str, event_type: str, now: datetime
    ) -> None: ...
    async def add_refund(self, **values: Any) -> RefundRecord: ...
    async def get_refund(self, refund_id: str) -> RefundRecord | None: ...
    async def refund_by_key(self, order_id: str, idempotency_key: str) -> RefundRecord | None: ...
    async def refunds_of_attempt(self, attempt_id: str) -> list[RefundRecord]: ...
    async def find_refund(
        self, *, refund_id: str | None, provider_refund_id: str | None
    ) -> RefundRecord | None: ...
    async def settle_refund(
        self,
        refund_id: str,
        status: str,
        now: datetime,
        *,
        provider_refund_id: str | None,
        failure_reason: str | None = None,
    ) -> bool: ...
    async def note_refund_accepted(
        self, refund_id: str, provider_refund_id: str | None, now: datetime, next_try_at: datetime
    ) -> None: ...
    async def note_refund_error(
        self, refund_id: str, error: str, now: datetime, next_try_at: datetime
    ) -> int | None: ...
    async def list_refunds(
        self, *, status: str | None = None, limit: int = 100
    ) -> list[RefundRecord]: ...
    async def claim_pending_refunds(
        self, *, before: datetime, now: datetime, limit: int
    ) -> list[RefundRecord]: ...
    async def claim_attempts_to_reconcile(
        self,
        *,
        now: datetime,
        unpaid_before: datetime,
        backoff: Callable[[int], timedelta],
        limit: int,
    ) -> list[AttemptRecord]: ...
    async def attempt_by_reference(self, provider_reference: str) -> AttemptRecord | None: ...
    async def add_dispute(self, **values: Any) -> tuple[DisputeRecord, bool]: ...
    async def update_dispute(
        self,
        dispute_id: str,
        now: datetime,
        *,
        status: str,
        evidence_due_by: datetime | None,
        closed_at: datetime | None,
    ) -> bool: ...
    async def list_disputes(self, *, open_only: bool, limit: int) -> list[DisputeRecord]: ...


# --- the SQL adapter -------------------------------------------------------------------------


class SqlPaymentsRepository:
    """`PaymentsRepository` on SQLAlchemy Core, for SQLite and PostgreSQL."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _one(self, query: Any) -> RowMapping | None:
        return (await self.session.execute(query)).mappings().first()

    async def _all(self, query: Any) -> Sequence[RowMapping]:
        return (await self.session.execute(query)).mappings().all()

    # -- customers --------------------------------------------------------------------------

    async def get_customer(
        self, customer_id: str, *, include_deleted: bool = False
    ) -> CustomerRecord | None:
        query = select(customers).where(customers.c.id == customer_id)
        if not include_deleted:
            query = query.where(customers.c.deleted_at.is_(None))
        row = await self._one(query)
        return _customer(row) if row else None

    async def list_customers(self, owner: Owner) -> list[CustomerRecord]:
        rows = await self._all(
            select(customers)
            .where(_owner_is(customers, owner), customers.c.deleted_at.is_(None))
            .order_by(customers.c.created_at, customers.c.id)
        )
        return [_customer(row) for row in rows]

    async def default_customer(self, owner: Owner) -> CustomerRecord | None:
        row = await self._one(
            select(customers).where(
                _owner_is(customers, owner),
                customers.c.is_default.is_(True),
                customers.c.deleted_at.is_(None),
            )
        )
        return _customer(row) if row else None

    async def lock_owner(self, owner: Owner) -> None:
        """Lock the owner's customers: default changes of one owner happen one at a time."""
        await self.session.execute(
            select(customers.c.id).where(_owner_is(customers, owner)).with_for_update()
        )

    async def add_customer(self, record: CustomerRecord) -> CustomerRecord:
        """Insert a customer; it becomes the default only if the owner has none (race-safe)."""
        details = record.details
        values = {
            "id": record.id,
            "owner_kind": record.owner.kind,
            "owner_id": record.owner.id,
            "organization_id": record.organization_id,
            "name": details.name,
            "email": str(details.email),
            "line1": details.address.line1,
            "line2": details.address.line2,
            "city": details.address.city,
            "postal_code": details.address.postal_code,
            "state": details.address.state,
            "country": details.address.country,
            "vat_id": details.vat_id,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
        }
        # The first customer of an owner becomes its default: the insert as default does
        # nothing when the owner has one (the one-default-per-owner index; a concurrent first
        # customer waits for the other to commit), and the customer is then inserted plainly.
        as_default = _insert_ignoring(
            self.session,
            customers,
            index_elements=["owner_kind", "owner_id"],
            index_where=customers.c.is_default,
        )
        row = await self._one(as_default.values(**values, is_default=True).returning(*customers.c))
        if row is None:
            row = await self._one(
                insert(customers).values(**values, is_default=False).returning(*customers.c)
            )
        assert row is not None
        return _customer(row)

    async def delete_customer(self, customer_id: str, now: datetime) -> None:
        await self.session.execute(
            update(customers)
            .where(customers.c.id == customer_id)
            .values(deleted_at=now, is_default=False, updated_at=now)
        )

    async def promote_oldest(self, owner: Owner, now: datetime) -> CustomerRecord | None:
        """Make the owner's oldest customer the default when the owner has none; return it."""
        if await self.default_customer(owner) is not None:
            return None
        row = await self._one(
            select(customers.c.id)
            .where(_owner_is(customers, owner), customers.c.deleted_at.is_(None))
            .order_by(customers.c.created_at, customers.c.id)
            .limit(1)
        )
        if row is None:
            return None
        try:
            async with self.session.begin_nested():
                await self.session.execute(
                    update(customers)
                    .where(customers.c.id == row["id"])
                    .values(is_default=True, updated_at=now)
                )
        except IntegrityError:
            return None  # another transaction promoted one meanwhile
        return await self.get_customer(row["id"])

    async def make_default(self, record: CustomerRecord, now: datetime) -> list[str]:
        """Make `record` its owner's default; return the ids whose default flag changed."""
        if record.is_default:
            return []
        previous = await self._all(
            select(customers.c.id).where(
                _owner_is(customers, record.owner), customers.c.is_default.is_(True)
            )
        )
        changed = [row["id"] for row in previous]
        if changed:
            await self.session.execute(
                update(customers)
                .where(customers.c.id.in_(changed))
                .values(is_default=False, updated_at=now)
            )
        await self.session.execute(
            update(customers)
            .where(customers.c.id == record.id)
            .values(is_default=True, updated_at=now)
        )
        return [*changed, record.id]

    async def reassign_customers(self, source: Owner, target: Owner, now: datetime) -> list[str]:
        """Give all of `source`'s customers to `target`, keeping one default; return moved ids."""
        moved = await self._all(
            select(customers.c.id, customers.c.is_default)
            .where(_owner_is(customers, source))
            .order_by(customers.c.created_at, customers.c.id)
        )
        if not moved:
            return []
        if await self.default_customer(target) is not None:
            # The user's own default stays the default.
            await self.session.execute(
                update(customers)
                .where(_owner_is(customers, source), customers.c.is_default.is_(True))
                .values(is_default=False, updated_at=now)
            )
        await self.session.execute(
            update(customers)
            .where(_owner_is(customers, source))
            .values(owner_kind=target.kind, owner_id=target.id, updated_at=now)
        )
        await self.promote_oldest(target, now)
        return [row["id"] for row in moved]

    async def provider_customer_id(self, customer_id: str, provider: str) -> str | None:
        row = await self._one(
            select(provider_customers.c.provider_customer_id).where(
                provider_customers.c.customer_id == customer_id,
                provider_customers.c.provider == provider,
            )
        )
        return row["provider_customer_id"] if row else None

    async def customer_for_payment(
        self, customer_id: str, provider: str
    ) -> tuple[CustomerRecord, str | None] | None:
        """A customer (deleted ones too: an order keeps its customer) with its account at
        `provider`, in one query."""
        account = and_(
            provider_customers.c.customer_id == customers.c.id,
            provider_customers.c.provider == provider,
        )
        row = await self._one(
            select(*customers.c, provider_customers.c.provider_customer_id)
            .select_from(customers.outerjoin(provider_customers, account))
            .where(customers.c.id == customer_id)
        )
        return None if row is None else (_customer(row), row["provider_customer_id"])

    async def save_provider_customer(
        self, customer_id: str, provider: str, provider_customer_id: str, now: datetime
    ) -> str:
        """Remember the provider's customer; the first one saved wins. Returns the kept id."""
        try:
            async with self.session.begin_nested():
                await self.session.execute(
                    insert(provider_customers).values(
                        customer_id=customer_id,
                        provider=provider,
                        provider_customer_id=provider_customer_id,
                        created_at=now,
                    )
                )
        except IntegrityError:
            pass
        kept = await self.provider_customer_id(customer_id, provider)
        assert kept is not None
        return kept

    # -- orders and attempts ----------------------------------------------------------------

    async def lock_order(
        self, order_id: str, *, order_number: str | None = None, now: datetime | None = None
    ) -> OrderPaymentRecord | None:
        """Lock the order's payment row (creating it when a number is given)."""
        query = select(order_payments).where(order_payments.c.order_id == order_id)
        row = await self._one(query.with_for_update())
        if row is None and order_number is not None:
            try:
                async with self.session.begin_nested():
                    await self.session.execute(
                        insert(order_payments).values(
                            order_id=order_id, order_number=order_number, created_at=now
                        )
                    )
            except IntegrityError:
                pass  # created concurrently: lock that one
            row = await self._one(query.with_for_update())
        if row is None:
            return None
        return OrderPaymentRecord(
            order_id=row["order_id"],
            order_number=row["order_number"],
            paid_attempt_id=row["paid_attempt_id"],
            paid_at=row["paid_at"],
            canceled_at=row["canceled_at"],
        )

    async def open_order(
        self, order_id: str, *, order_number: str, now: datetime
    ) -> OrderPaymentRecord:
        """Create the order's payment row unless it exists, then lock it (two statements)."""
        await self.session.execute(
            _insert_ignoring(self.session, order_payments, index_elements=["order_id"]).values(
                order_id=order_id, order_number=order_number, created_at=now
            )
        )
        row = await self._one(
            select(order_payments).where(order_payments.c.order_id == order_id).with_for_update()
        )
        assert row is not None
        return OrderPaymentRecord(
            order_id=row["order_id"],
            order_number=row["order_number"],
            paid_attempt_id=row["paid_attempt_id"],
            paid_at=row["paid_at"],
            canceled_at=row["canceled_at"],
        )

    async def set_order_canceled(self, order_id: str, now: datetime) -> None:
        await self.session.execute(
            update(order_payments)
            .where(order_payments.c.order_id == order_id, order_payments.c.canceled_at.is_(None))
            .values(canceled_at=now)
        )

    async def set_order_paid(self, order_id: str, attempt_id: str, now: datetime) -> bool:
        result = await self.session.execute(
            update(order_payments)
            .where(
                order_payments.c.order_id == order_id, order_payments.c.paid_attempt_id.is_(None)
            )
            .values(paid_attempt_id=attempt_id, paid_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def add_attempt(self, **values: Any) -> AttemptRecord:
        owner: Owner = values.pop("owner")
        lines: Sequence[PaymentLine] = values.pop("lines")
        row = await self._one(
            insert(payment_attempts)
            .values(
                **values,
                owner_kind=owner.kind,
                owner_id=owner.id,
                lines=[line.model_dump(mode="json") for line in lines],
                status="unpaid",
                refund_required=False,
            )
            .returning(*payment_attempts.c)
        )
        assert row is not None
        return _attempt(row)

    async def get_attempt(self, attempt_id: str) -> AttemptRecord | None:
        row = await self._one(select(payment_attempts).where(payment_attempts.c.id == attempt_id))
        return _attempt(row) if row else None

    async def attempt_by_session(self, session_id: str) -> AttemptRecord | None:
        row = await self._one(
            select(payment_attempts).where(payment_attempts.c.provider_session_id == session_id)
        )
        return _attempt(row) if row else None

    async def attempt_by_provider_subscription(self, subscription_id: str) -> AttemptRecord | None:
        row = await self._one(
            select(payment_attempts)
            .where(payment_attempts.c.provider_subscription_id == subscription_id)
            .order_by(payment_attempts.c.created_at)
            .limit(1)
        )
        return _attempt(row) if row else None

    async def unpaid_attempts(self, order_id: str) -> list[AttemptRecord]:
        rows = await self._all(
            select(payment_attempts)
            .where(payment_attempts.c.order_id == order_id, payment_attempts.c.status == "unpaid")
            .order_by(payment_attempts.c.created_at.desc(), payment_attempts.c.id)
        )
        return [_attempt(row) for row in rows]

    async def attempts_for_order(self, order_id: str) -> list[AttemptRecord]:
        rows = await self._all(
            select(payment_attempts)
            .where(payment_attempts.c.order_id == order_id)
            .order_by(payment_attempts.c.created_at, payment_attempts.c.id)
        )
        return [_attempt(row) for row in rows]

    async def set_session(
        self,
        attempt_id: str,
        *,
        session_id: str,
        url: str,
        expires_at: datetime | None,
        now: datetime,
    ) -> AttemptRecord | None:
        """Give the attempt its provider checkout; the attempt, or None if it had one already."""
        values: dict[str, Any] = {
            "provider_session_id": session_id,
            "checkout_url": url,
            "updated_at": now,
        }
        if expires_at is not None:
            values["expires_at"] = expires_at
        row = await self._one(
            update(payment_attempts)
            .where(
                payment_attempts.c.id == attempt_id,
                payment_attempts.c.provider_session_id.is_(None),
            )
            .values(**values)
            .returning(*payment_attempts.c)
        )
        return _attempt(row) if row else None

    async def transition(
        self, attempt_id: str, target: str, now: datetime, **values: Any
    ) -> AttemptRecord | None:
        """`target` from a state that may reach it (`MOVES_FROM`), as a guarded update; the
        moved attempt, or None if it was elsewhere (one statement either way)."""
        if target == "paid":
            values["paid_at"] = now
        row = await self._one(
            update(payment_attempts)
            .where(
                payment_attempts.c.id == attempt_id,
                payment_attempts.c.status.in_(MOVES_FROM[target]),
            )
            .values(status=target, updated_at=now, **values)
            .returning(*payment_attempts.c)
        )
        return _attempt(row) if row else None

    async def cancel_unpaid_attempts(
        self, order_id: str, now: datetime, *, reason: str
    ) -> list[tuple[str, str | None]]:
        """Cancel every unpaid attempt of the order in one statement; their (provider,
        session id), whose hosted checkouts should be closed too."""
        return await self._cancel_attempts(order_id, ("unpaid",), now, reason=reason)

    async def cancel_open_attempts(
        self, order_id: str, now: datetime, *, reason: str
    ) -> list[tuple[str, str | None]]:
        """Cancel the order's unpaid and processing attempts (its order was canceled): money
        that still reaches one of them is refunded."""
        return await self._cancel_attempts(order_id, ("unpaid", "processing"), now, reason=reason)

    async def _cancel_attempts(
        self, order_id: str, statuses: tuple[str, ...], now: datetime, *, reason: str
    ) -> list[tuple[str, str | None]]:
        table = payment_attempts
        rows = await self.session.execute(
            update(table)
            .where(table.c.order_id == order_id, table.c.status.in_(statuses))
            .values(status="canceled", failure_reason=reason, updated_at=now)
            .returning(table.c.provider, table.c.provider_session_id)
        )
        return [(provider, session_id) for provider, session_id in rows.all()]

    async def update_attempt(self, attempt_id: str, now: datetime, **values: Any) -> None:
        await self.session.execute(
            update(payment_attempts)
            .where(payment_attempts.c.id == attempt_id)
            .values(updated_at=now, **values)
        )

    async def reassign_attempts(self, source: Owner, target: Owner, now: datetime) -> int:
        result = await self.session.execute(
            update(payment_attempts)
            .where(_owner_is(payment_attempts, source))
            .values(owner_kind=target.kind, owner_id=target.id, updated_at=now)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # -- subscriptions ----------------------------------------------------------------------

    async def get_subscription(self, subscription_id: str) -> SubscriptionRecord | None:
        row = await self._one(select(subscriptions).where(subscriptions.c.id == subscription_id))
        return _subscription(row) if row else None

    async def subscription_by_provider_id(
        self, provider: str, provider_subscription_id: str
    ) -> SubscriptionRecord | None:
        row = await self._one(
            select(subscriptions).where(
                subscriptions.c.provider == provider,
                subscriptions.c.provider_subscription_id == provider_subscription_id,
            )
        )
        return _subscription(row) if row else None

    async def subscription_by_attempt(self, attempt_id: str) -> SubscriptionRecord | None:
        row = await self._one(select(subscriptions).where(subscriptions.c.attempt_id == attempt_id))
        return _subscription(row) if row else None

    async def list_subscriptions(self, owner: Owner) -> list[SubscriptionRecord]:
        rows = await self._all(
            select(subscriptions)
            .where(_owner_is(subscriptions, owner))
            .order_by(subscriptions.c.created_at.desc(), subscriptions.c.id)
        )
        return [_subscription(row) for row in rows]

    async def add_subscription(self, **values: Any) -> SubscriptionRecord:
        owner: Owner = values.pop("owner")
        await self.session.execute(
            insert(subscriptions).values(**values, owner_kind=owner.kind, owner_id=owner.id)
        )
        found = await self.get_subscription(values["id"])
        assert found is not None
        return found

    async def update_subscription(self, subscription_id: str, now: datetime, **values: Any) -> None:
        await self.session.execute(
            update(subscriptions)
            .where(subscriptions.c.id == subscription_id)
            .values(updated_at=now, **values)
        )

    async def mark_cancellation_announced(self, subscription_id: str, now: datetime) -> bool:
        """Set `canceled_at` once; True only for the caller that set it."""
        result = await self.session.execute(
            update(subscriptions)
            .where(subscriptions.c.id == subscription_id, subscriptions.c.canceled_at.is_(None))
            .values(canceled_at=now, updated_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def add_renewal(self, **values: Any) -> bool:
        """Record a renewal once per invoice; False when it was already recorded."""
        try:
            async with self.session.begin_nested():
                await self.session.execute(insert(subscription_renewals).values(**values))
        except IntegrityError:
            return False
        return True

    async def add_past_due(self, **values: Any) -> bool:
        """Record an invoice the provider could not charge, once per invoice and reason; False
        when it was already recorded."""
        try:
            async with self.session.begin_nested():
                await self.session.execute(insert(subscription_past_dues).values(**values))
        except IntegrityError:
            return False
        return True

    async def renewal_counts(self, subscription_ids: Sequence[str]) -> dict[str, int]:
        """How many renewals each subscription had (one query)."""
        if not subscription_ids:
            return {}
        rows = await self.session.execute(
            select(subscription_renewals.c.subscription_id, func.count())
            .where(subscription_renewals.c.subscription_id.in_(subscription_ids))
            .group_by(subscription_renewals.c.subscription_id)
        )
        counts = {subscription_id: 0 for subscription_id in subscription_ids}
        counts.update({subscription_id: int(count) for subscription_id, count in rows.all()})
        return counts

    async def claim_subscriptions_to_reconcile(
        self, *, now: datetime, checked_before: datetime, limit: int
    ) -> list[tuple[SubscriptionRecord, datetime | None]]:
        """Running subscriptions whose paid invoices are due a look (never asked, or last asked
        before `checked_before`), never-asked ones first, then the longest unasked; each with
        when its newest renewal was recorded (None: none yet). Leased until `now`."""
        table = subscriptions
        rows = await self._all(
            select(table)
            .where(
                table.c.status.in_(RENEWING_STATUSES),
                table.c.ended_at.is_(None),
                or_(
                    table.c.renewals_checked_at.is_(None),
                    table.c.renewals_checked_at <= checked_before,
                ),
            )
            .order_by(table.c.renewals_checked_at.asc().nulls_first(), table.c.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        found = [_subscription(row) for row in rows]
        if not found:
            return []
        ids = [subscription.id for subscription in found]
        await self.session.execute(
            update(table).where(table.c.id.in_(ids)).values(renewals_checked_at=now)
        )
        newest = dict(
            (
                await self.session.execute(
                    select(
                        subscription_renewals.c.subscription_id,
                        func.max(subscription_renewals.c.created_at),
                    )
                    .where(subscription_renewals.c.subscription_id.in_(ids))
                    .group_by(subscription_renewals.c.subscription_id)
                )
            ).all()
        )
        return [(subscription, newest.get(subscription.id)) for subscription in found]

    async def reassign_subscriptions(self, source: Owner, target: Owner, now: datetime) -> int:
        result = await self.session.execute(
            update(subscriptions)
            .where(_owner_is(subscriptions, source))
            .values(owner_kind=target.kind, owner_id=target.id, updated_at=now)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # -- provider events --------------------------------------------------------------------

    async def record_provider_event(
        self, provider: str, event_id: str, event_type: str, now: datetime
    ) -> None:
        """Claim a provider event for this transaction; DuplicateProviderEvent if already seen.

        One statement: a concurrent delivery of the same event blocks on the insert until the
        first commits, then inserts nothing (or claims it, if the first rolled back).
        """
        claimed = await self._one(
            _insert_ignoring_conflicts(self.session, provider_events)
            .values(provider=provider, event_id=event_id, type=event_type, received_at=now)
            .returning(provider_events.c.event_id)
        )
        if claimed is None:
            raise DuplicateProviderEvent(event_id)

    # -- refunds ----------------------------------------------------------------------------

    async def add_refund(self, **values: Any) -> RefundRecord:
        """A refund, `pending` unless a status is given; the existing one when its order already
        has a refund of this idempotency key (by default `attempt:<id>`: one automatic refund
        per attempt, whatever reported its money twice; one per operator request; one per
        provider refund)."""
        values.setdefault("status", "pending")
        values.setdefault("idempotency_key", f"attempt:{values['attempt_id']}")
        try:
            async with self.session.begin_nested():
                await self.session.execute(
                    insert(refunds).values(**values, updated_at=values["created_at"])
                )
        except IntegrityError:
            pass
        found = await self.refund_by_key(values["order_id"], values["idempotency_key"])
        assert found is not None
        return found

    async def get_refund(self, refund_id: str) -> RefundRecord | None:
        row = await self._one(select(refunds).where(refunds.c.id == refund_id))
        return RefundRecord(**row) if row else None

    async def refund_by_key(self, order_id: str, idempotency_key: str) -> RefundRecord | None:
        row = await self._one(
            select(refunds).where(
                refunds.c.order_id == order_id, refunds.c.idempotency_key == idempotency_key
            )
        )
        return RefundRecord(**row) if row else None

    async def refunds_of_attempt(self, attempt_id: str) -> list[RefundRecord]:
        """Every refund of one attempt's money, oldest first."""
        rows = await self._all(
            select(refunds)
            .where(refunds.c.attempt_id == attempt_id)
            .order_by(refunds.c.created_at, refunds.c.id)
        )
        return [RefundRecord(**row) for row in rows]

    async def find_refund(
        self, *, refund_id: str | None, provider_refund_id: str | None
    ) -> RefundRecord | None:
        """Store's refund named by its own id, or else by the provider's."""
        if refund_id:
            found = await self.get_refund(refund_id)
            if found is not None:
                return found
        if not provider_refund_id:
            return None
        row = await self._one(
            select(refunds).where(refunds.c.provider_refund_id == provider_refund_id)
        )
        return RefundRecord(**row) if row else None

    async def settle_refund(
        self,
        refund_id: str,
        status: str,
        now: datetime,
        *,
        provider_refund_id: str | None,
        failure_reason: str | None = None,
    ) -> bool:
        """pending -> `status` (succeeded, failed or canceled), once: the first end is final;
        True if this call moved it."""
        values: dict[str, Any] = {
            "status": status,
            "failure_reason": failure_reason,
            "next_try_at": None,
            "updated_at": now,
        }
        if provider_refund_id:
            values["provider_refund_id"] = provider_refund_id
        if status == "succeeded":
            values["last_error"] = None
        result = await self.session.execute(
            update(refunds)
            .where(refunds.c.id == refund_id, refunds.c.status == "pending")
            .values(**values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def note_refund_accepted(
        self, refund_id: str, provider_refund_id: str | None, now: datetime, next_try_at: datetime
    ) -> None:
        """The provider took the refund and has not settled it: ask again at `next_try_at`."""
        await self.session.execute(
            update(refunds)
            .where(refunds.c.id == refund_id, refunds.c.status == "pending")
            .values(
                provider_refund_id=provider_refund_id,
                last_error=None,
                next_try_at=next_try_at,
                updated_at=now,
            )
        )

    async def note_refund_error(
        self, refund_id: str, error: str, now: datetime, next_try_at: datetime
    ) -> int | None:
        """One more try that did not settle a pending refund; how many there have been (None:
        it was settled meanwhile, by its webhook)."""
        tries = await self.session.scalar(
            update(refunds)
            .where(refunds.c.id == refund_id, refunds.c.status == "pending")
            .values(
                last_error=error[:500],
                tries=refunds.c.tries + 1,
                next_try_at=next_try_at,
                updated_at=now,
            )
            .returning(refunds.c.tries)
        )
        return None if tries is None else int(tries)

    async def list_refunds(
        self, *, status: str | None = None, limit: int = 100
    ) -> list[RefundRecord]:
        query = select(refunds).order_by(refunds.c.created_at.desc(), refunds.c.id).limit(limit)
        if status is not None:
            query = query.where(refunds.c.status == status)
        return [RefundRecord(**row) for row in await self._all(query)]

    async def claim_pending_refunds(
        self, *, before: datetime, now: datetime, limit: int
    ) -> list[RefundRecord]:
        """Pending refunds untouched since `before` and due (`next_try_at`), leased to this
        caller until it is done (their `updated_at` moves to now), skipping rows another replica
        holds."""
        rows = await self._all(
            select(refunds)
            .where(
                refunds.c.status == "pending",
                refunds.c.updated_at <= before,
                or_(refunds.c.next_try_at.is_(None), refunds.c.next_try_at <= now),
            )
            .order_by(refunds.c.updated_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        found = [RefundRecord(**row) for row in rows]
        if found:
            await self.session.execute(
                update(refunds)
                .where(refunds.c.id.in_([r.id for r in found]))
                .values(updated_at=now)
            )
        return found

    # -- disputes ---------------------------------------------------------------------------

    async def attempt_by_reference(self, provider_reference: str) -> AttemptRecord | None:
        """The attempt a payment paid (a paid attempt first, if the reference named several)."""
        row = await self._one(
            select(payment_attempts)
            .where(payment_attempts.c.provider_reference == provider_reference)
            .order_by((payment_attempts.c.status == "paid").desc(), payment_attempts.c.created_at)
        )
        return _attempt(row) if row else None

    async def add_dispute(self, **values: Any) -> tuple[DisputeRecord, bool]:
        """The dispute, recorded now unless it was before; True when this call recorded it."""
        created = True
        try:
            async with self.session.begin_nested():
                await self.session.execute(insert(disputes).values(**values))
        except IntegrityError:
            created = False  # reported before: one row per provider dispute
        row = await self._one(
            select(disputes).where(
                disputes.c.provider == values["provider"],
                disputes.c.provider_dispute_id == values["provider_dispute_id"],
            )
        )
        assert row is not None
        return DisputeRecord(**row), created

    async def update_dispute(
        self,
        dispute_id: str,
        now: datetime,
        *,
        status: str,
        evidence_due_by: datetime | None,
        closed_at: datetime | None,
    ) -> bool:
        """An open dispute's news (closed when `closed_at` is given); a closed one never
        changes again. True if this call changed it."""
        result = await self.session.execute(
            update(disputes)
            .where(disputes.c.id == dispute_id, disputes.c.closed_at.is_(None))
            .values(
                status=status,
                evidence_due_by=evidence_due_by,
                closed_at=closed_at,
                updated_at=now,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def list_disputes(self, *, open_only: bool, limit: int) -> list[DisputeRecord]:
        query = select(disputes).order_by(disputes.c.opened_at.desc(), disputes.c.id).limit(limit)
        if open_only:
            query = query.where(disputes.c.closed_at.is_(None))
        return [DisputeRecord(**row) for row in await self._all(query)]

    # -- reconciliation ---------------------------------------------------------------------

    async def claim_attempts_to_reconcile(
        self,
        *,
        now: datetime,
        unpaid_before: datetime,
        backoff: Callable[[int], timedelta],
        limit: int,
    ) -> list[AttemptRecord]:
        """Unpaid attempts with a provider session, older than `unpaid_before` or past their
        expiry, and processing ones until they settle, whose next look is due; never-looked-at
        ones first, the newest of those first, so a fresh session whose webhook was lost is not
        starved by a backlog of abandoned ones. Each is leased until its next look:
        `now + backoff(looks so far)`."""
        table = payment_attempts
        rows = await self._all(
            select(table)
            .where(
                table.c.provider_session_id.is_not(None),
                or_(
                    and_(
                        table.c.status == "unpaid",
                        or_(table.c.created_at <= unpaid_before, table.c.expires_at <= now),
                    ),
                    table.c.status == "processing",
                ),
                or_(table.c.reconcile_after.is_(None), table.c.reconcile_after <= now),
            )
            .order_by(table.c.reconcile_after.asc().nulls_first(), table.c.created_at.desc())
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        found = [_attempt(row) for row in rows]
        for checks in sorted({attempt.reconcile_checks for attempt in found}):
            await self.session.execute(
                update(table)
                .where(table.c.id.in_([a.id for a in found if a.reconcile_checks == checks]))
                .values(reconcile_after=now + backoff(checks), reconcile_checks=checks + 1)
            )
        return found


__all__ = [
    "AttemptRecord",
    "CustomerRecord",
    "DuplicateProviderEvent",
    "OrderPaymentRecord",
    "PaymentsRepository",
    "RefundRecord",
    "SqlPaymentsRepository",
    "SubscriptionRecord",
]
