"""The notifications database: the messages sent, and who owns each order (a projection)."""

from __future__ import annotations

from sqlalchemy import Column, Index, PrimaryKeyConstraint, String, Table

from libs.runtime.db import UTCDateTime, new_metadata
from libs.runtime.outbox import inbox_table, outbox_table

metadata = new_metadata()

# One row per message sent, keyed by the event that caused it and the kind of message: the
# row commits with the event's inbox row, so a handled event never sends again (docs/
# notifications.md, "One message per event").
sent_messages = Table(
    "sent_messages",
    metadata,
    Column("event_id", String(36), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("message_id", String(255), nullable=False, unique=True),
    Column("order_id", String(64), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("locale", String(8), nullable=False),
    Column("subject", String(500), nullable=False),
    Column("sent_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("event_id", "kind"),
    Index("ix_sent_messages_sent_at", "sent_at"),
    Index("ix_sent_messages_order_id", "order_id"),
)

# Who owns each order, from orders.order.created.v1 and identity.anonymous.merged.v1: the events
# of payments do not name the owner, and the order view is read as its owner.
order_owners = Table(
    "order_owners",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("owner_kind", String(16), nullable=False),
    Column("owner_id", String(200), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_order_owners_owner", "owner_kind", "owner_id"),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
