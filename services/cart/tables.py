"""The cart database: user carts, every checked-out cart, and the record of merges."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from libs.runtime.db import UTCDateTime, new_metadata
from libs.runtime.outbox import inbox_table, outbox_table

metadata = new_metadata()

carts = Table(
    "carts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("external_id", String(36), nullable=False, unique=True),
    Column("owner_kind", String(16), nullable=False),
    Column("owner_id", String(200), nullable=False),
    # "kind:id" while the cart is its owner's current one, NULL once frozen: a unique column
    # gives "one open cart per owner" on SQLite and PostgreSQL alike (NULLs never collide).
    Column("open_key", String(220), nullable=True, unique=True),
    Column("currency", String(3), nullable=True),
    Column("order_id", String(64), nullable=True, unique=True),
    Column("frozen_at", UTCDateTime, nullable=True),
    Column("order_confirmed_at", UTCDateTime, nullable=True),  # orders.order.created.v1
    Column("order_paid_at", UTCDateTime, nullable=True),  # orders.order.paid.v1
    Column("line_seq", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_carts_owner_frozen", "owner_kind", "owner_id", "frozen_at"),
)

cart_lines = Table(
    "cart_lines",
    metadata,
    Column("id", String(36), primary_key=True),  # the line_id clients see
    Column(
        "cart_id",
        String(36),
        ForeignKey("carts.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("pricing_id", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("position", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("cart_id", "pricing_id"),
    CheckConstraint("quantity >= 1", name="quantity_positive"),
)

# One row per anonymous id ever merged: the primary key makes a merge happen once, even when
# two requests race (the second insert conflicts and its transaction changes nothing).
cart_merges = Table(
    "cart_merges",
    metadata,
    Column("anonymous_id", String(200), primary_key=True),
    Column("user_id", String(200), nullable=False),
    Column("cart_id", String(36), nullable=True),
    # Token of the Redis copy of the anonymous cart this merge moved: a racing merge that lost
    # tells by it whether the copy it took aside was merged (else it puts it back).
    Column("drain_token", String(36), nullable=True),
    Column("merged_at", UTCDateTime, nullable=False),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
