"""Finding products: the search's parameters, its cursors, and the `ProductSearch` port with
its PostgreSQL (tsvector + pg_trgm) and SQLite (FTS5 trigram) adapters.

Every sort order pages by a keyset — (rank, id), (price, id) or (created_at, id) — so a page
starts strictly after the last row of the previous one: products added meanwhile never
repeat a row or skip one (docs/catalog.md, "Search"; docs/adr/023-product-search.md).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol, cast, get_args

from sqlalchemy import (
    Float,
    Numeric,
    Select,
    String,
    and_,
    bindparam,
    case,
    column,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from libs.contracts.catalog import MAX_SEARCH_QUERY_LENGTH, ProductSearchParams, ProductSort
from libs.contracts.money import normalize_currency
from libs.runtime.problems import InvalidInput
from services.catalog.domain import Product, language_of
from services.catalog.store import _product
from services.catalog.tables import pricings, product_translations, products

Sort = ProductSort
SORTS: tuple[str, ...] = get_args(Sort)
MAX_QUERY_LENGTH = MAX_SEARCH_QUERY_LENGTH
MAX_WORDS = 8
MAX_WORD_LENGTH = 40

# The text search configuration of a language; any other language is searched as `simple`
# (lower-cased words, no stemming). The migration's generated column spells the same table.
TEXT_SEARCH_CONFIGS = {"de": "german", "fr": "french", "en": "english"}


def text_search_config(locale: str) -> str:
    return TEXT_SEARCH_CONFIGS.get(language_of(locale), "simple")


# ------------------------------------------------------------------------------ parameters


@dataclass(frozen=True)
class SearchQuery:
    """What a shopper asked for, checked: a query text (or none), filters and a sort."""

    sort: Sort
    q: str | None = None
    shippable: bool | None = None
    currency: str | None = None
    price_min: int | None = None
    price_max: int | None = None

    @property
    def words(self) -> list[str]:
        return query_words(self.q or "")

    @property
    def by_price(self) -> bool:
        return self.sort in ("price_asc", "price_desc")

    @property
    def priced(self) -> bool:
        """Only products with a price in `currency` (bounded or sorted by it)."""
        return self.by_price or self.price_min is not None or self.price_max is not None


def wants_search(params: ProductSearchParams) -> bool:
    """Whether a listing asks for more than today's key-ordered walk."""
    return params != ProductSearchParams()


def parse_search(params: ProductSearchParams) -> SearchQuery:
    """The search's parameters, checked; a 422 naming the field otherwise."""
    q, sort, currency = params.q, params.sort, params.currency
    price_min, price_max = params.price_min, params.price_max
    text_query = None
    if q is not None:
        if len(q) > MAX_QUERY_LENGTH:
            raise InvalidInput.for_field("q", f"must be at most {MAX_QUERY_LENGTH} characters")
        text_query = " ".join(q.split()) or None
        if text_query is not None and not query_words(text_query):
            raise InvalidInput.for_field("q", "must contain a letter or a digit")
    if sort is None:
        chosen: Sort = "relevance" if text_query else "newest"
    elif sort not in SORTS:
        raise InvalidInput.for_field(
            "sort", f"must be one of {', '.join(SORTS)}, not {sort!r}", code="unknown_sort"
        )
    else:
        chosen = cast(Sort, sort)
    if chosen == "relevance" and not text_query:
        raise InvalidInput.for_field("sort", "relevance needs a query text `q`")
    for name, bound in (("price_min", price_min), ("price_max", price_max)):
        if bound is not None and bound < 0:
            raise InvalidInput.for_field(name, "must be 0 or more (minor units)")
    if price_min is not None and price_max is not None and price_min > price_max:
        raise InvalidInput.for_field("price_min", "must not be greater than price_max")
    code = None
    if currency is not None:
        try:
            code = normalize_currency(currency)
        except ValueError as exc:
            raise InvalidInput.for_field("currency", str(exc), code="unknown_currency") from None
    if code is None and (price_min is not None or price_max is not None):
        raise InvalidInput.for_field(
            "currency", "is required with price_min or price_max (ISO 4217, e.g. EUR)"
        )
    if code is None and chosen in ("price_asc", "price_desc"):
        raise InvalidInput.for_field(
            "currency", f"is required to sort by {chosen} (ISO 4217, e.g. EUR)"
        )
    return SearchQuery(
        sort=chosen,
        q=text_query,
        shippable=params.shippable,
        currency=code,
        price_min=price_min,
        price_max=price_max,
    )


_WORD = re.compile(r"\w+")


def query_words(q: str) -> list[str]:
    """The words of a query text, lower-cased: letters and digits only, so that they can be
    spliced into a tsquery or an FTS5 expression without any quoting left to get wrong."""
    words = [w[:MAX_WORD_LENGTH] for w in _WORD.findall(q.lower().replace("_", " "))]
    return list(dict.fromkeys(words))[:MAX_WORDS]


def typo_variants(word: str) -> list[str]:
    """The word and its neighbours one slip away that trigrams miss: two letters swapped
    ("mgu" → "mug") and, in longer words, one letter typed twice or too many ("muug")."""
    variants = [word]
    if any(c.isdigit() for c in word):
        return variants  # "330ml", "4242": a swapped digit is another number, not a typo
    for i in range(len(word) - 1):
        variants.append(word[:i] + word[i + 1] + word[i] + word[i + 2 :])
    if len(word) >= 4:
        variants.extend(word[:i] + word[i + 1 :] for i in range(len(word)))
    return [v for v in dict.fromkeys(variants) if len(v) >= min(3, len(word))]


# ------------------------------------------------------------------------------ cursors

_CURSOR_PREFIX = "s1."


@dataclass(frozen=True)
class SearchCursor:
    """Where a search page ends: the sort's key of its last row, and that row's id."""

    sort: str
    value: str
    id: str


def encode_search_cursor(sort: str, value: Any, product_id: str) -> str:
    """An opaque cursor after a row whose sort key is `value`."""
    if isinstance(value, datetime):
        value = value.isoformat()
    payload = json.dumps([sort, str(value), product_id], separators=(",", ":"))
    return _CURSOR_PREFIX + base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_search_cursor(cursor: str, sort: str) -> SearchCursor:
    """The row a cursor points after; a cursor of another sort, or one we did not make, is
    a 422."""
    refused = InvalidInput.for_field(
        "cursor",
        "not a cursor of this list (sort and filters must stay the same)",
        code="invalid_cursor",
    )
    if not cursor.startswith(_CURSOR_PREFIX):
        raise refused
    body = cursor[len(_CURSOR_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode((body + "=" * (-len(body) % 4)).encode("ascii"))
        decoded = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeError):
        raise refused from None
    if (
        not isinstance(decoded, list)
        or len(decoded) != 3
        or not all(isinstance(part, str) for part in decoded)
        or decoded[0] != sort
    ):
        raise refused
    found = SearchCursor(*decoded)
    try:
        _cursor_value(found)
    except (ValueError, InvalidOperation):
        raise refused from None
    return found


def _cursor_value(cursor: SearchCursor) -> Any:
    if cursor.sort == "newest":
        return datetime.fromisoformat(cursor.value)
    if cursor.sort in ("price_asc", "price_desc"):
        return int(cursor.value)
    return Decimal(cursor.value)


# ------------------------------------------------------------------------------ the port


@dataclass(frozen=True)
class Found:
    """A product on a search page, with its sort key (for the next cursor)."""

    product: Product
    sort_value: Any


class ProductSearch(Protocol):
    """Finds products for a SearchQuery, a page after a cursor, within one connection."""

    async def search(
        self,
        connection: AsyncConnection,
        query: SearchQuery,
        *,
        languages: Sequence[str],
        sellable: bool,
        recurring: bool | None,
        after: SearchCursor | None,
        limit: int,
    ) -> list[Found]: ...


def product_search_for(dialect: str) -> ProductSearch:
    """The adapter of a database: PostgreSQL, or SQLite (the embedded mode)."""
    return PostgresProductSearch() if dialect == "postgresql" else SqliteProductSearch()


class _SqlProductSearch:
    """What both adapters share: the filters, the price in a currency, the keyset and the
    order. Each adapter adds the text match: a subquery of (product_id, rank)."""

    async def search(
        self,
        connection: AsyncConnection,
        query: SearchQuery,
        *,
        languages: Sequence[str],
        sellable: bool,
        recurring: bool | None,
        after: SearchCursor | None,
        limit: int,
    ) -> list[Found]:
        statement = self.statement(
            query,
            languages=languages,
            sellable=sellable,
            recurring=recurring,
            after=after,
            limit=limit,
        )
        rows = (await connection.execute(statement)).all()
        return [Found(_product(row._mapping), row._mapping["sort_value"]) for row in rows]

    def statement(
        self,
        query: SearchQuery,
        *,
        languages: Sequence[str],
        sellable: bool,
        recurring: bool | None,
        after: SearchCursor | None,
        limit: int,
    ) -> Select[Any]:
        source: Any = products
        conditions: list[ColumnElement[bool]] = [products.c.sellable == sellable]
        if recurring is True:
            conditions.append(products.c.has_recurring == true())
        elif recurring is False:
            conditions.append(products.c.has_one_off == true())
        if query.shippable is not None:
            conditions.append(products.c.shippable == query.shippable)

        price: Any = None
        tie: Any = products.c.id
        if query.priced and query.currency is not None:
            # A product's price in a currency is its lowest active one there: the one price
            # row with no cheaper (amount, id) beside it. Not a GROUP BY over every price: the
            # page walks `ix_pricings_currency_amount` in order and stops after `limit` rows.
            lowest = pricings.alias("lowest")
            cheaper = pricings.alias("cheaper")
            in_currency = and_(lowest.c.active == true(), lowest.c.currency == query.currency)
            source = source.join(lowest, and_(lowest.c.product_id == products.c.id, in_currency))
            conditions.append(
                ~exists().where(
                    cheaper.c.product_id == lowest.c.product_id,
                    cheaper.c.active == true(),
                    cheaper.c.currency == query.currency,
                    tuple_(cheaper.c.unit_amount, cheaper.c.id)
                    < tuple_(lowest.c.unit_amount, lowest.c.id),
                )
            )
            price = lowest.c.unit_amount
            if query.by_price:
                tie = lowest.c.product_id  # the same id, in the index's own column
            if query.price_min is not None:
                conditions.append(price >= query.price_min)
            if query.price_max is not None:
                conditions.append(price <= query.price_max)

        rank: Any = None
        if query.q:
            matches = self.matches(query, languages)
            source = source.join(matches, matches.c.product_id == products.c.id)
            rank = matches.c.score

        key: Any
        descending = query.sort != "price_asc"
        if query.sort == "relevance":
            key = rank
        elif query.by_price:
            key = price
        else:
            key = products.c.created_at
        if after is not None:
            position = tuple_(key, tie)
            bound = tuple_(self.cursor_param(after, key.type), literal(after.id))
            conditions.append(position < bound if descending else position > bound)
        order = [key.desc(), tie.desc()] if descending else [key, tie]
        return (
            select(products, key.label("sort_value"))
            .select_from(source)
            .where(and_(*conditions))
            .order_by(*order)
            .limit(limit)
        )

    def cursor_param(self, after: SearchCursor, type_: Any) -> Any:
        # The key's own type, so the value binds as the column stores it (UTCDateTime, ...).
        return bindparam("after_value", _cursor_value(after), type_=type_)

    def matches(self, query: SearchQuery, languages: Sequence[str]) -> Any:
        raise NotImplementedError


def _in_language(column: Any, language: str) -> ColumnElement[bool]:
    """`de` and its regional variants (`de-CH`): a product's texts a shopper of `de` reads."""
    return or_(column == language, column.like(f"{language}-%"))


class PostgresProductSearch(_SqlProductSearch):
    """`product_translations.search_vector` (a generated tsvector, per locale's text search
    configuration, GIN-indexed) for words and prefixes; pg_trgm's word similarity on the name
    for typos. Rank: ts_rank of the words as typed, plus the name's word similarity."""

    def matches(self, query: SearchQuery, languages: Sequence[str]) -> Any:
        t = product_translations
        q: Any = bindparam("q_text", query.q)
        vector: Any = literal_column("product_translations.search_vector")
        expression = " & ".join(
            "(" + " | ".join(f"{v}:*" for v in typo_variants(w)) + ")" for w in query.words
        )
        # Ranked on the words as typed: a typo's variant finds a product but scores nothing,
        # so exact words come first (and ts_rank of a short query is cheaper per row).
        exact = " & ".join(f"{w}:*" for w in query.words)
        ts_ranks = []
        matched = []
        for language in languages:
            config: Any = literal_column(f"'{text_search_config(language)}'::regconfig")
            in_language = _in_language(t.c.locale, language)
            # Each branch a bare index condition, so the OR can be a BitmapOr of GIN scans;
            # the locales are narrowed once, outside it.
            matched.append(vector.op("@@")(func.to_tsquery(config, expression)))
            ts_ranks.append((in_language, func.ts_rank(vector, func.to_tsquery(config, exact))))
        # pg_trgm's operators (GIN-indexed): similar as a whole (≥ 0.3), or to a word (≥ 0.6).
        similar = or_(q.op("%")(t.c.name), q.op("<%")(t.c.name))
        ts_rank = case(*ts_ranks, else_=literal(0.0))
        score = func.round((ts_rank + func.word_similarity(q, t.c.name)).cast(Numeric), 6)
        return (
            select(t.c.product_id.label("product_id"), func.max(score).label("score"))
            .where(or_(*(_in_language(t.c.locale, lang) for lang in languages)))
            .where(or_(*matched, similar))
            .group_by(t.c.product_id)
            .subquery("matches")
        )


class SqliteProductSearch(_SqlProductSearch):
    """The FTS5 table `product_search` (trigram tokenizer: any three letters in a row, so
    prefixes and the inside of compound words match), kept in step by triggers on
    `product_translations`. Typos: each word or one of its `typo_variants`. Rank: bm25."""

    def cursor_param(self, after: SearchCursor, type_: Any) -> Any:
        if after.sort == "relevance":  # bm25 is a REAL, and a float's repr reads back exactly
            return bindparam("after_value", float(after.value), type_=Float)
        return super().cursor_param(after, type_)

    def matches(self, query: SearchQuery, languages: Sequence[str]) -> Any:
        long_words = [w for w in query.words if len(w) >= 3]
        locale_params = {f"lang{i}": lang for i, lang in enumerate(languages)}
        in_languages = " OR ".join(
            f"(locale = :lang{i} OR locale LIKE :lang{i} || '-%')" for i in range(len(languages))
        )
        if long_words:
            expression = " AND ".join(
                "(" + " OR ".join(f'"{v}"' for v in typo_variants(w)) + ")" for w in long_words
            )
            # FTS5's `rank` is bm25, lower for better matches.
            sql = (
                "SELECT product_id, max(-rank) AS score FROM product_search "
                f"WHERE product_search MATCH :fts AND ({in_languages}) GROUP BY product_id"
            )
            params: dict[str, Any] = {"fts": expression, **locale_params}
        else:
            # Words under three letters are below the trigram tokenizer: a scan of the names.
            sql = (
                "SELECT product_id, 1.0 AS score FROM product_search WHERE name LIKE :like "
                f"AND ({in_languages}) GROUP BY product_id"
            )
            params = {"like": f"%{query.q}%", **locale_params}
        return (
            text(sql)
            .bindparams(**params)
            .columns(column("product_id", String), column("score", Float))
            .subquery("matches")
        )
