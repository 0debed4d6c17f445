"""The search's pure parts: parameter checks, cursors, query words and typo variants."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.contracts.catalog import ProductSearchParams
from libs.runtime.problems import InvalidInput
from services.catalog.search import (
    SORTS,
    decode_search_cursor,
    encode_search_cursor,
    parse_search,
    query_words,
    text_search_config,
    typo_variants,
    wants_search,
)


def parse(**params: object) -> object:
    return parse_search(ProductSearchParams(**params))  # type: ignore[arg-type]


def refused(field: str, **params: object) -> str:
    with pytest.raises(InvalidInput) as caught:
        parse(**params)
    [error] = caught.value.errors or []
    assert error.field == field
    return error.message


def test_the_default_sort_is_relevance_with_a_query_and_newest_without() -> None:
    assert parse_search(ProductSearchParams(q=" mug ")).sort == "relevance"
    assert parse_search(ProductSearchParams(q=" mug ")).q == "mug"
    assert parse_search(ProductSearchParams(shippable=True)).sort == "newest"
    assert parse_search(ProductSearchParams(currency="eur", sort="price_asc")).currency == "EUR"


def test_no_search_parameter_keeps_the_listing() -> None:
    assert not wants_search(ProductSearchParams())
    assert wants_search(ProductSearchParams(shippable=False))


@pytest.mark.parametrize(
    ("field", "params", "message"),
    [
        ("sort", {"sort": "cheap"}, "must be one of relevance, price_asc, price_desc, newest"),
        ("sort", {"sort": "relevance"}, "needs a query text"),
        ("q", {"q": "x" * 201}, "at most 200"),
        ("q", {"q": "?!"}, "a letter or a digit"),
        ("currency", {"price_max": 10}, "is required with price_min or price_max"),
        ("currency", {"sort": "price_desc"}, "is required to sort by price_desc"),
        ("currency", {"currency": "EURO"}, "unknown currency"),
        ("price_min", {"price_min": 3, "price_max": 2, "currency": "EUR"}, "price_max"),
        ("price_max", {"price_max": -1, "currency": "EUR"}, "0 or more"),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(
    field: str, params: dict[str, object], message: str
) -> None:
    assert message in refused(field, **params)


def test_a_cursor_reads_back_for_its_own_sort_only() -> None:
    at = datetime(2026, 12, 8, 1, 2, 3, 456789, tzinfo=UTC)
    cursor = encode_search_cursor("newest", at, "id-1")
    decoded = decode_search_cursor(cursor, "newest")
    assert (decoded.value, decoded.id) == (at.isoformat(), "id-1")
    with pytest.raises(InvalidInput):
        decode_search_cursor(cursor, "price_asc")


@pytest.mark.parametrize(
    "cursor", ["", "s1.", "s1.!!!", "bXVn", "s1.WyJuZXdlc3QiXQ", "s1.WyJwcmljZV9hc2MiLCJ4IiwiaSJd"]
)
def test_a_cursor_we_did_not_make_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidInput):
        decode_search_cursor(cursor, "price_asc")


@given(
    sort=st.sampled_from(SORTS),
    number=st.integers(min_value=0, max_value=10**12),
    rank=st.floats(allow_nan=False, allow_infinity=False),
    product_id=st.uuids().map(str),
)
def test_every_cursor_round_trips(sort: str, number: int, rank: float, product_id: str) -> None:
    value: object = rank if sort == "relevance" else number
    if sort == "newest":
        value = datetime.fromtimestamp(number % 10**9, UTC)
    decoded = decode_search_cursor(encode_search_cursor(sort, value, product_id), sort)
    assert decoded.id == product_id
    if sort == "relevance":
        assert float(decoded.value) == rank  # a float's repr reads back exactly


def test_query_words_are_letters_and_digits_only() -> None:
    assert query_words("Mug: 330ml & 'red'* OR \"x\"") == ["mug", "330ml", "red", "or", "x"]
    assert query_words("tasse tasse") == ["tasse"]
    assert len(query_words(" ".join(f"w{n}" for n in range(20)))) == 8


def test_typo_variants_swap_neighbours_and_drop_a_letter() -> None:
    assert "mug" in typo_variants("mgu")
    assert "mug" in typo_variants("muug")
    assert typo_variants("mug")[0] == "mug"
    assert all(len(v) >= 2 for v in typo_variants("ab"))


def test_each_language_has_its_text_search_configuration() -> None:
    assert [text_search_config(t) for t in ("de-CH", "fr", "en-GB", "it", "pt-BR")] == [
        "german",
        "french",
        "english",
        "simple",
        "simple",
    ]
