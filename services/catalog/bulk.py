"""Synthetic catalogs for benchmarks and load tests: many products, fast, without images.

Rows go in with multi-row INSERTs in batches, bypassing the service (no events, no image
work), so 100k products take seconds. Every product gets an English name, a one-off price,
and every fifth one a monthly price too, so the listing's filters have something to find.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from libs.contracts.money import currency_exponent, normalize_currency
from libs.runtime.runtime import Runtime
from services.catalog.tables import pricings, product_translations, products

Target = Runtime | AsyncEngine | AsyncSession


async def generate_products(
    target: Target,
    count: int,
    currency: str = "EUR",
    *,
    key_prefix: str = "bulk",
    start: int = 0,
    batch_size: int = 2_000,
) -> int:
    """Insert `count` products named `<key_prefix>-<n>` (n from `start`); returns how many.

    `target` is a Runtime or an engine (each batch is its own transaction) or a session
    (the caller commits).
    """
    code = normalize_currency(currency)
    base_amount = 10 ** currency_exponent(code)  # whole units, whatever the decimals
    if count < 0:
        raise ValueError("count must be 0 or more")
    for first in range(start, start + count, batch_size):
        last = min(first + batch_size, start + count)
        rows = _batch(range(first, last), key_prefix, code, base_amount)
        await _insert(target, rows)
    return count


def _batch(
    numbers: range, key_prefix: str, currency: str, base_amount: int
) -> dict[str, list[dict[str, Any]]]:
    at = datetime.now(UTC)
    width = 7
    product_rows, text_rows, price_rows = [], [], []
    for n in numbers:
        product_id = str(uuid.uuid4())
        recurring = n % 5 == 0
        product_rows.append(
            {
                "id": product_id,
                "key": f"{key_prefix}-{n:0{width}d}",
                "tax_code": "general",
                "shippable": True,
                "active": True,
                "sellable": True,
                "has_one_off": True,
                "has_recurring": recurring,
                "created_at": at,
                "updated_at": at,
            }
        )
        text_rows.append(
            {
                "product_id": product_id,
                "locale": "en",
                "name": f"Product {n}",
                "description": f"Synthetic product number {n}.",
                "checkout_description": None,
                "statement_descriptor": None,
                "updated_at": at,
            }
        )
        price_rows.append(_price(product_id, (n % 100 + 1) * base_amount, currency, None, at))
        if recurring:
            price_rows.append(_price(product_id, (n % 20 + 1) * base_amount, currency, "month", at))
    return {"products": product_rows, "texts": text_rows, "prices": price_rows}


def _price(
    product_id: str, amount: int, currency: str, interval: str | None, at: datetime
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "product_id": product_id,
        "unit_amount": amount,
        "currency": currency,
        "interval": interval,
        "interval_count": 1,
        "active": True,
        "used": False,
        "replaced_by": None,
        "created_at": at,
        "updated_at": at,
    }


async def _insert(target: Target, rows: dict[str, list[dict[str, Any]]]) -> None:
    async def write(session_or_connection: Any) -> None:
        await session_or_connection.execute(insert(products), rows["products"])
        await session_or_connection.execute(insert(product_translations), rows["texts"])
        await session_or_connection.execute(insert(pricings), rows["prices"])

    if isinstance(target, AsyncSession):
        await write(target)
    elif isinstance(target, Runtime):
        async with target.engine.begin() as connection:
            await write(connection)
    else:
        async with target.begin() as connection:
            await write(connection)
