"""Product search: on PostgreSQL a generated tsvector per translation (the locale's text search
configuration), a GIN index on it and a pg_trgm index on names; on SQLite an FTS5 table kept in
step by triggers. Both in the same transaction as the texts they index. Plus the keyset indexes
of the `newest` sort and of prices by currency.

Revision ID: a4c7e2f9b310
Revises: 5b1e9c7d2a40
Create Date: 2026-12-08 02:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "a4c7e2f9b310"
down_revision: str | None = "5b1e9c7d2a40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# services/catalog/search.py:TEXT_SEARCH_CONFIGS, as SQL: an immutable expression, so that it
# can define a generated column.
_CONFIG = (
    "CASE WHEN locale = 'de' OR locale LIKE 'de-%' THEN 'german'::regconfig"
    " WHEN locale = 'fr' OR locale LIKE 'fr-%' THEN 'french'::regconfig"
    " WHEN locale = 'en' OR locale LIKE 'en-%' THEN 'english'::regconfig"
    " ELSE 'simple'::regconfig END"
)

_SQLITE_TRIGGERS = [
    """CREATE TRIGGER product_search_insert AFTER INSERT ON product_translations BEGIN
         INSERT INTO product_search (product_id, locale, name, description)
         VALUES (new.product_id, new.locale, new.name, new.description);
       END""",
    """CREATE TRIGGER product_search_update AFTER UPDATE ON product_translations BEGIN
         DELETE FROM product_search WHERE product_id = old.product_id AND locale = old.locale;
         INSERT INTO product_search (product_id, locale, name, description)
         VALUES (new.product_id, new.locale, new.name, new.description);
       END""",
    """CREATE TRIGGER product_search_delete AFTER DELETE ON product_translations BEGIN
         DELETE FROM product_search WHERE product_id = old.product_id AND locale = old.locale;
       END""",
]


def upgrade() -> None:
    op.create_index("ix_products_newest", "products", ["sellable", "created_at", "id"])
    op.create_index(
        "ix_pricings_currency_amount",
        "pricings",
        ["currency", "active", "unit_amount", "product_id"],
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "ALTER TABLE product_translations ADD COLUMN search_vector tsvector GENERATED ALWAYS"
            f" AS (to_tsvector({_CONFIG}, coalesce(name, '') || ' ' || coalesce(description, '')))"
            " STORED"
        )
        op.execute(
            "CREATE INDEX ix_product_translations_search ON product_translations"
            " USING gin (search_vector)"
        )
        op.execute(
            "CREATE INDEX ix_product_translations_name_trgm ON product_translations"
            " USING gin (name gin_trgm_ops)"
        )
        return
    # product_id and locale are stored, not indexed: the trigram tokenizer indexes the texts.
    op.execute(
        "CREATE VIRTUAL TABLE product_search USING fts5("
        "product_id UNINDEXED, locale UNINDEXED, name, description, tokenize = 'trigram')"
    )
    for trigger in _SQLITE_TRIGGERS:
        op.execute(trigger)
    op.execute(
        "INSERT INTO product_search (product_id, locale, name, description)"
        " SELECT product_id, locale, name, description FROM product_translations"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_product_translations_name_trgm")
        op.execute("DROP INDEX IF EXISTS ix_product_translations_search")
        op.execute("ALTER TABLE product_translations DROP COLUMN IF EXISTS search_vector")
    else:
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS product_search_{name}")
        op.execute("DROP TABLE IF EXISTS product_search")
    op.drop_index("ix_pricings_currency_amount", table_name="pricings")
    op.drop_index("ix_products_newest", table_name="products")
