"""Tables of the orders service.

`orders.details` (and every column fixed at purchase time) never changes after the insert:
the ORM refuses it here (`before_update`), and the database refuses it too — a trigger created
by the first migration on PostgreSQL and on SQLite — so raw SQL cannot change it either.
Only `owner_*` (re-owned on merge), `paid`/`paid_attempt_id` (set once), `canceled_*` (set
once, only while unpaid) and `backordered` (set once, when paid without stock) may change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    event,
    false,
    inspect,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.runtime.db import JSONType, UTCDateTime, new_metadata
from libs.runtime.outbox import inbox_table, outbox_table

metadata = new_metadata()

# Fixed at purchase time; any change is refused by the ORM hook below and the DB trigger.
IMMUTABLE_COLUMNS = (
    "id",
    "number",
    "cart_id",
    "customer_id",
    "organization_id",
    "currency",
    "total",
    "details",
    "created_at",
)


class Base(DeclarativeBase):
    metadata = metadata


class OrderRow(Base):
    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    cart_id: Mapped[str] = mapped_column(String(64), unique=True)
    owner_kind: Mapped[str] = mapped_column(String(20))
    owner_id: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[str | None] = mapped_column(String(64))
    organization_id: Mapped[str | None] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[int] = mapped_column(BigInteger)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paid_attempt_id: Mapped[str | None] = mapped_column(String(64))
    # Paid after its stock was released, with too little left to cover it (set once).
    backordered: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Set once, only while unpaid: a canceled order is never paid (ADR 020).
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    canceled_by: Mapped[str | None] = mapped_column(String(20), nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    canceled_actor: Mapped[str | None] = mapped_column(String(200), nullable=True)

    __table_args__ = (
        # The archive: one owner's orders, newest first, keyset-paginated on (created_at, id).
        Index("ix_orders_owner_created", "owner_kind", "owner_id", "created_at", "id"),
        # Every order, newest first: the operator's list (the admin API).
        Index("ix_orders_created", "created_at", "id"),
    )


class OrderNumberRow(Base):
    """One row per order number handed out; the autoincrement value is the sequence.

    An identity/serial column is portable (SQLite, PostgreSQL) and never blocks concurrent
    checkouts; a rolled-back checkout leaves a gap, which is harmless for order numbers.
    """

    __tablename__ = "order_numbers"

    value: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    order_id: Mapped[str] = mapped_column(String(36), unique=True)


class OwnerMergeRow(Base):
    """Anonymous shoppers merged into a user; orders prepared for them later go to the user."""

    __tablename__ = "owner_merges"

    anonymous_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200))
    merged_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RefundRow(Base):
    """A refund of an order, as payments reported it; keyed by the payments refund id.

    No foreign key to `orders`: a refund may arrive before its order (the event overtook the
    order's commit); it is kept and shows once the order exists. Only `status` and
    `updated_at` change, and only from `pending` (ADR 006: the first terminal state wins).
    """

    __tablename__ = "order_refunds"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(36))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        # A page of orders' refunds in one query, each order's oldest first.
        Index("ix_order_refunds_order_created", "order_id", "created_at", "id"),
    )


class DisputeRow(Base):
    """A dispute of an order's payment, as payments reported it; keyed by the payments
    dispute id.

    Like a refund, no foreign key to `orders` (the event may overtake the order's commit).
    The opened report inserts it; the closed report sets `status`, `closed_at` and
    `updated_at` once, and a closed dispute never changes again (ADR 006).
    """

    __tablename__ = "order_disputes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(36))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(30))
    evidence_due_by: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        # A page of orders' disputes in one query, each order's oldest first.
        Index("ix_order_disputes_order_opened", "order_id", "opened_at", "id"),
    )


class FulfillmentRow(Base):
    """A shipment of an order: carrier, tracking and the lines it holds, as the operator said.

    Written under a row lock on its order (services/orders/fulfillments.py), so the quantities
    shipped never exceed the ordered ones; never updated.
    """

    __tablename__ = "order_fulfillments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(36), ForeignKey("orders.id"))
    carrier: Mapped[str] = mapped_column(String(100))
    tracking_number: Mapped[str] = mapped_column(String(100))
    tracking_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    # [{pricing_id, product_key, name, quantity}]: a snapshot, like the order's details.
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    actor: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        # A page of orders' fulfilments in one query, each order's oldest first.
        Index("ix_order_fulfillments_order_created", "order_id", "created_at", "id"),
    )


class RenewalRow(Base):
    """The renewal order of one provider invoice: the invoice is the key, so a redelivered or
    concurrent `SubscriptionRenewed` finds it taken and creates no second order."""

    __tablename__ = "order_renewals"

    invoice_reference: Mapped[str] = mapped_column(String(255), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(36), unique=True)
    subscription_id: Mapped[str] = mapped_column(String(64))
    first_order_id: Mapped[str] = mapped_column(String(36))
    period_end: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_order_renewals_subscription", "subscription_id", "created_at"),)


outbox_table(metadata)
inbox_table(metadata)


class ImmutableOrderError(Exception):
    """Something tried to change a column of an order that is fixed at purchase time."""


@event.listens_for(OrderRow, "before_update")
def _refuse_immutable_changes(_mapper: Any, _connection: Any, target: OrderRow) -> None:
    state = inspect(target)
    changed = [name for name in IMMUTABLE_COLUMNS if state.attrs[name].history.has_changes()]
    if changed:
        raise ImmutableOrderError(f"order {target.id}: {', '.join(changed)} cannot change")
