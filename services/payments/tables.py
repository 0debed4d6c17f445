"""The payments service's tables: customers, payment attempts, subscriptions, provider events."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from libs.runtime.db import JSONType, UTCDateTime, new_metadata
from libs.runtime.outbox import inbox_table, outbox_table

metadata = new_metadata()

customers = Table(
    "customers",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner_kind", String(20), nullable=False),
    Column("owner_id", String(200), nullable=False),
    Column("organization_id", String(200), nullable=True),
    Column("name", String(200), nullable=False),
    Column("email", String(320), nullable=False),
    Column("line1", String(200), nullable=False),
    Column("line2", String(200), nullable=True),
    Column("city", String(100), nullable=False),
    Column("postal_code", String(20), nullable=False),
    Column("state", String(100), nullable=True),
    Column("country", String(2), nullable=False),
    Column("vat_id", String(20), nullable=True),
    Column("is_default", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Deleted customers are kept (orders and attempts refer to them) but hidden.
    Column("deleted_at", UTCDateTime, nullable=True),
    Index("ix_customers_owner", "owner_kind", "owner_id", "created_at"),
    # Exactly one default per owner, whatever races happen above it.
    Index(
        "uq_customers_default_per_owner",
        "owner_kind",
        "owner_id",
        unique=True,
        sqlite_where=text("is_default"),
        postgresql_where=text("is_default"),
    ),
)

# A customer's account at a provider (the Stripe customer), created at its first checkout.
provider_customers = Table(
    "provider_customers",
    metadata,
    Column("customer_id", String(36), nullable=False),
    Column("provider", String(20), nullable=False),
    Column("provider_customer_id", String(255), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("customer_id", "provider"),
)

# One row per order that payments has seen: the lock that serializes an order's attempts and
# the single place that says which attempt paid it.
order_payments = Table(
    "order_payments",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("order_number", String(64), nullable=False),
    Column("paid_attempt_id", String(36), nullable=True, unique=True),
    Column("paid_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    # The order was canceled: no new attempt, and money that lands anyway is refunded.
    Column("canceled_at", UTCDateTime, nullable=True),
)

payment_attempts = Table(
    "payment_attempts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("order_id", String(36), nullable=False),
    Column("order_number", String(64), nullable=False),
    Column("owner_kind", String(20), nullable=False),
    Column("owner_id", String(200), nullable=False),
    Column("customer_id", String(36), nullable=False),
    Column("status", String(20), nullable=False),
    Column("mode", String(20), nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("lines", JSONType, nullable=False),
    # The order's lines as the order froze them (pricing_id, quantity, total with tax): what a
    # refund by lines is priced from. `lines` is what the provider charges, which may merge them.
    Column("order_lines", JSONType, nullable=True),
    Column("statement_descriptor", String(100), nullable=True),
    Column("success_url", Text, nullable=False),
    Column("cancel_url", Text, nullable=False),
    Column("provider", String(20), nullable=False),
    Column("provider_session_id", String(255), nullable=True, unique=True),
    Column("checkout_url", Text, nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("provider_payment_status", String(40), nullable=True),
    Column("provider_reference", String(255), nullable=True),
    Column("provider_subscription_id", String(255), nullable=True),
    Column("failure_reason", String(500), nullable=True),
    Column("refund_required", Boolean, nullable=False, default=False),
    Column("refund_reason", String(100), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("paid_at", UTCDateTime, nullable=True),
    # Reconciliation's next look at an unpaid attempt: each look leases it until then (so
    # replicas never ask twice at once) and backs off with the number of looks so far.
    Column("reconcile_after", UTCDateTime, nullable=True),
    Column("reconcile_checks", Integer, nullable=False, default=0, server_default="0"),
    Index("ix_payment_attempts_order", "order_id", "created_at"),
    # A dispute names the payment (Stripe's PaymentIntent), not the attempt.
    Index("ix_payment_attempts_provider_reference", "provider_reference"),
    Index(
        "ix_payment_attempts_to_reconcile",
        "reconcile_after",
        "created_at",
        sqlite_where=text("status IN ('unpaid', 'processing')"),
        postgresql_where=text("status IN ('unpaid', 'processing')"),
    ),
    Index("ix_payment_attempts_owner", "owner_kind", "owner_id"),
    # An order has at most one paid attempt (order_payments.paid_attempt_id is the guard used
    # by the code; this index is the backstop in the database).
    Index(
        "uq_payment_attempts_paid_per_order",
        "order_id",
        unique=True,
        sqlite_where=text("status = 'paid'"),
        postgresql_where=text("status = 'paid'"),
    ),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner_kind", String(20), nullable=False),
    Column("owner_id", String(200), nullable=False),
    Column("order_id", String(36), nullable=False),
    Column("attempt_id", String(36), nullable=False, unique=True),
    Column("customer_id", String(36), nullable=False),
    Column("provider", String(20), nullable=False),
    Column("provider_subscription_id", String(255), nullable=False, unique=True),
    Column("status", String(40), nullable=False),
    Column("interval", String(10), nullable=False),
    Column("interval_count", Integer, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("current_period_end", UTCDateTime, nullable=True),
    Column("cancel_at_period_end", Boolean, nullable=False, default=False),
    # When a cancellation was announced (SubscriptionCanceled is published once).
    Column("canceled_at", UTCDateTime, nullable=True),
    Column("ended_at", UTCDateTime, nullable=True),
    # Creation time of the newest provider event applied; older ones arriving late are ignored.
    Column("provider_updated_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # When reconciliation last asked the provider about its paid invoices (a lease: the next
    # look is due an hour later), so every subscription gets its turn, never-asked ones first.
    Column("renewals_checked_at", UTCDateTime, nullable=True),
    Index("ix_subscriptions_owner", "owner_kind", "owner_id", "created_at"),
    Index("ix_subscriptions_renewals_checked", "renewals_checked_at"),
)

subscription_renewals = Table(
    "subscription_renewals",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("subscription_id", String(36), nullable=False),
    Column("invoice_reference", String(255), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("period_end", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("subscription_id", "invoice_reference"),
)

# Invoices of a new period that the provider could not charge (or that wait for the shopper's
# bank): one row per invoice and reason, so that each is announced once however often the
# provider retries and reports it.
subscription_past_dues = Table(
    "subscription_past_dues",
    metadata,
    Column("subscription_id", String(36), nullable=False),
    Column("invoice_reference", String(255), nullable=False),
    Column("reason", String(40), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("subscription_id", "invoice_reference", "reason"),
)

# Money sent back through the provider: one row per attempt whose payment must not stay (a
# second payment of a paid order, a payment after its checkout closed, a mismatch). `pending`
# until the provider settles it (`succeeded`, `failed`, `canceled`); reconciliation sends what
# the provider has not accepted yet and asks about what it has (ADR 007, "Refunds").
refunds = Table(
    "refunds",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("attempt_id", String(36), nullable=False),
    Column("order_id", String(36), nullable=False),
    Column("provider", String(20), nullable=False),
    Column("provider_reference", String(255), nullable=True),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reason", String(100), nullable=False),
    # What makes a refund once per order: `attempt:<id>` for the automatic refund of an
    # attempt's money, the operator's Idempotency-Key, `provider:<id>` for a Dashboard refund.
    Column("idempotency_key", String(255), nullable=False),
    # An operator's refund: who asked, the reason they gave, the request's digest (the same key
    # with another request is refused) and the lines it refunds ([{pricing_id, quantity}]).
    Column("actor", String(200), nullable=True),
    Column("note", String(500), nullable=True),
    Column("request_hash", String(64), nullable=True),
    Column("lines", JSONType, nullable=True),
    Column("status", String(20), nullable=False),
    Column("provider_refund_id", String(255), nullable=True),
    Column("last_error", String(500), nullable=True),
    Column("failure_reason", String(500), nullable=True),
    # Calls to the provider that did not settle it, and when reconciliation next sends it or
    # asks how it went (a backoff: bounded retries, then `failed`).
    Column("tries", Integer, nullable=False, server_default="0"),
    Column("next_try_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_refunds_status", "status", "created_at"),
    Index("ix_refunds_provider_refund_id", "provider_refund_id"),
    Index("ix_refunds_attempt_id", "attempt_id"),
    UniqueConstraint("order_id", "idempotency_key"),
)

# A shopper's bank disputing a payment, as the provider reports it: one row per provider
# dispute, `closed_at` set once it is won, lost or closed (ADR 007, "Disputes").
disputes = Table(
    "disputes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("provider", String(20), nullable=False),
    Column("provider_dispute_id", String(255), nullable=False),
    Column("attempt_id", String(36), nullable=True),
    Column("order_id", String(36), nullable=True),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reason", String(100), nullable=False),
    Column("status", String(40), nullable=False),
    Column("evidence_due_by", UTCDateTime, nullable=True),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("provider", "provider_dispute_id"),
    Index("ix_disputes_order_id", "order_id"),
)

# Provider events already applied; inserted in the same transaction as their effects.
provider_events = Table(
    "provider_events",
    metadata,
    Column("provider", String(20), nullable=False),
    Column("event_id", String(255), nullable=False),
    Column("type", String(100), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("provider", "event_id"),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
