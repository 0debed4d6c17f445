"""The catalog's tables. Portable SQL (SQLite and PostgreSQL); ids are string UUIDs.

`products` carries three flags derived from its prices (`sellable`, `has_one_off`,
`has_recurring`), kept up to date by the repository whenever a price changes, so that the
listing's filters are plain index range scans: a page costs the same at any catalog size.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from libs.runtime.db import JSONType, UTCDateTime, new_metadata
from libs.runtime.outbox import inbox_table, outbox_table

metadata = new_metadata()

products = Table(
    "products",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("key", String(128), nullable=False, unique=True),
    Column("tax_code", String(64), nullable=True),
    Column("shippable", Boolean, nullable=False),
    Column("active", Boolean, nullable=False),
    # Derived from the prices: active and at least one active price (listed in the shop).
    Column("sellable", Boolean, nullable=False, default=False),
    Column("has_one_off", Boolean, nullable=False, default=False),
    Column("has_recurring", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # The listing walks these in key order from the cursor, whatever the filters.
    Index("ix_products_listing", "sellable", "key"),
    Index("ix_products_listing_one_off", "sellable", "has_one_off", "key"),
    Index("ix_products_listing_recurring", "sellable", "has_recurring", "key"),
    # The search's `newest` keyset (services/catalog/search.py).
    Index("ix_products_newest", "sellable", "created_at", "id"),
)

pricings = Table(
    "pricings",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("product_id", String(36), ForeignKey("products.id", ondelete="CASCADE"), nullable=False),
    Column("unit_amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("interval", String(8), nullable=True),
    Column("interval_count", Integer, nullable=False, default=1),
    Column("active", Boolean, nullable=False, default=True),
    # Set once the price was checked out: from then on it is replaced, never edited.
    Column("used", Boolean, nullable=False, default=False),
    Column("replaced_by", String(36), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_pricings_product", "product_id", "active"),
    # A product's lowest price in a currency, for the search's price filters and sorts.
    Index("ix_pricings_currency_amount", "currency", "active", "unit_amount", "product_id"),
)

product_translations = Table(
    "product_translations",
    metadata,
    Column(
        "product_id",
        String(36),
        ForeignKey("products.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("locale", String(35), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("checkout_description", String(500), nullable=True),
    Column("statement_descriptor", String(22), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    # Searched through objects of the migration `a4c7e2f9b310`, not columns of this table: on
    # PostgreSQL a generated `search_vector` tsvector, on SQLite the FTS5 table
    # `product_search` and its triggers; both change in the same transaction as these rows.
)

product_images = Table(
    "product_images",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("product_id", String(36), ForeignKey("products.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    # Hash of the re-encoded file (its name), and of the bytes uploaded (to spot a re-upload).
    Column("content_hash", String(64), nullable=False),
    Column("source_hash", String(64), nullable=False),
    Column("content_type", String(40), nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("path", String(400), nullable=False),
    Column("thumbnails", JSONType, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("product_id", "content_hash"),
    Index("ix_product_images_product", "product_id", "position"),
)

tax_rates = Table(
    "tax_rates",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("country_code", String(2), nullable=False),
    Column("tax_code", String(64), nullable=True),
    Column("display_name", String(100), nullable=False),
    # A decimal string ("8.1"): exact on SQLite too, which has no decimal type.
    Column("percentage", String(12), nullable=False),
    Column("inclusive", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_tax_rates_country", "country_code", "tax_code"),
)

# Reference data like tax rates: a handful of rows, read whole. Names, zone and prices are
# small JSON documents (names by locale, countries or null for all, prices by currency).
shipping_methods = Table(
    "shipping_methods",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("code", String(64), nullable=False),
    Column("names", JSONType, nullable=False),
    Column("countries", JSONType, nullable=True),
    Column("prices", JSONType, nullable=False),
    Column("tax_code", String(64), nullable=True),
    Column("delivery_days_min", Integer, nullable=False),
    Column("delivery_days_max", Integer, nullable=False),
    Column("position", Integer, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("code"),
)

# Stock (docs/stock.md): a row per product that tracks it; no row means not tracked. `reserved`
# is what held reservations take; a sale takes its units off both (`on_hand` may then be below
# `reserved` only through a backorder, never through a reservation).
stock_levels = Table(
    "stock_levels",
    metadata,
    Column(
        "product_id",
        String(36),
        ForeignKey("products.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("tracked", Boolean, nullable=False),
    Column("on_hand", Integer, nullable=False),
    Column("reserved", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# One row per (order, tracked product): held, released or sold. A hold is bound to the payment
# attempt it waits for (its expiry releases it) and has a deadline the sweep enforces.
stock_reservations = Table(
    "stock_reservations",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column(
        "product_id",
        String(36),
        ForeignKey("products.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("quantity", Integer, nullable=False),
    Column("status", String(8), nullable=False),
    Column("attempt_id", String(64), nullable=True),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("backordered", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_stock_reservations_expiry", "status", "expires_at"),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
